// Kubernetes equality-based label selectors: "a=b,c==d,e!=f,g,!h".

export interface LabelSelector {
  text: string;
  matches(labels: Record<string, string>): boolean;
}

type Term = { key: string; op: '=' | '!=' | 'exists' | '!exists'; value?: string };

export function parseLabelSelector(text: string): LabelSelector {
  const terms: Term[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (!part) continue;
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*!=\s*([\w.-]*)$/.exec(part))) terms.push({ key: m[1], op: '!=', value: m[2] });
    else if ((m = /^([\w./-]+)\s*==?\s*([\w.-]*)$/.exec(part))) terms.push({ key: m[1], op: '=', value: m[2] });
    else if ((m = /^!\s*([\w./-]+)$/.exec(part))) terms.push({ key: m[1], op: '!exists' });
    else if ((m = /^([\w./-]+)$/.exec(part))) terms.push({ key: m[1], op: 'exists' });
    else throw new Error(`cannot parse label selector term "${part}" (use key=value, key!=value, key or !key)`);
  }
  return {
    text,
    matches(labels) {
      return terms.every((t) => {
        // Its own labels only: every object answers toString, constructor and __proto__.
        const v = Object.hasOwn(labels, t.key) ? labels[t.key] : undefined;
        switch (t.op) {
          case '=':
            return v === t.value;
          case '!=':
            return v !== t.value;
          case 'exists':
            return v !== undefined;
          case '!exists':
            return v === undefined;
        }
      });
    },
  };
}
