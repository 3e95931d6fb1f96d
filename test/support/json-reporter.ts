// vitest's JSON report plus what its own JSON reporter leaves out: errors thrown or rejected
// outside any test. They fail the run (non-zero exit), yet every test in the plain report passed;
// .ci/run counts them from `numUnhandledErrors`.
import { JsonReporter, type SerializedError, type TestModule } from 'vitest/node';

export default class JsonWithUnhandledErrors extends JsonReporter {
  private unhandled: readonly SerializedError[] = [];

  override async onTestRunEnd(testModules: readonly TestModule[], unhandledErrors: readonly SerializedError[] = []): Promise<void> {
    this.unhandled = unhandledErrors;
    await super.onTestRunEnd(testModules);
  }

  override async writeReport(report: string): Promise<void> {
    const r = JSON.parse(report) as Record<string, unknown>;
    r.numUnhandledErrors = this.unhandled.length;
    r.unhandledErrors = this.unhandled.map((e) => ({ name: e.name, message: e.message, stack: e.stack }));
    if (this.unhandled.length > 0) r.success = false;
    await super.writeReport(JSON.stringify(r));
  }
}
