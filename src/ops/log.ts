// pino logger: JSON lines on stderr, so stdout stays free for command output.
import { pino, type Logger } from 'pino';

export function createLogger(level: string = process.env.FEDNS_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { name: 'fedns' } }, pino.destination(2));
}

export type { Logger };
