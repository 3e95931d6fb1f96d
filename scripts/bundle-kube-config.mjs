// Builds dist/vendor/kube-config.js: @kubernetes/client-node's KubeConfig (kubeconfig and
// in-cluster loading, token, certificate, exec, OIDC and cloud auth, proxies) without the rest of
// the library. Importing the library whole evaluates its generated API (about 960 modules, every
// Kubernetes type and endpoint), which costs a serving fedns 0.4 s at start and about 50 MiB of memory
// for code it never calls: it speaks to the API server through src/cluster/kube-http.ts and uses
// the library only for credentials. `fedns join` still loads the whole library (it needs CoreV1Api).
//
// The library is built with TypeScript's class-field output, so a bundler must assume each of its
// generated modules has side effects (static fields are assignments after the class); they have
// none, and saying so is what lets the unused ones go. The library's own dependencies stay imports
// from node_modules, resolved as when the library loads them itself.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const libDir = dirname(require.resolve('@kubernetes/client-node/package.json'));
const lib = JSON.parse(readFileSync(join(libDir, 'package.json'), 'utf8'));
const deps = Object.keys(lib.dependencies ?? {});
const isDep = (id) => deps.some((d) => id === d || id.startsWith(`${d}/`));
const generated = `${join(libDir, 'dist', 'gen')}/`;

// The bundle imports the library's dependencies by name from dist/vendor/, which resolves to the
// top-level node_modules. A dependency installed under the library instead (another version than
// the top-level one, or none there) would load the wrong copy or none: refuse to build.
// (Type packages are never loaded.)
const misplaced = deps.filter((d) => !d.startsWith('@types/')).filter((d) => {
  try {
    return dirname(createRequire(join(libDir, 'package.json')).resolve(`${d}/package.json`)) !== dirname(require.resolve(`${d}/package.json`));
  } catch {
    // Packages that export no package.json: their directories are compared as installed.
    return existsSync(join(libDir, 'node_modules', d)) || !existsSync(join(root, 'node_modules', d));
  }
});
if (misplaced.length) {
  console.error(
    `bundle-kube-config: ${misplaced.join(', ')} ${misplaced.length > 1 ? 'are' : 'is'} not installed at the top of node_modules as @kubernetes/client-node sees ${misplaced.length > 1 ? 'them' : 'it'}; ` +
      'the bundle would load another copy. Add the version the library needs to package.json, or bundle it (leave it out of external in scripts/bundle-kube-config.mjs).',
  );
  process.exit(1);
}

// Dependencies only some kubeconfigs need, loaded when one first uses them: an HTTP client the
// kubeconfig reader never calls (node-fetch), proxy agents (a cluster with proxy-url), and OIDC
// (an oidc auth provider that refreshes its token). Imported at start, they cost a fedns serving
// a kube cluster 5-6 MiB of resident memory (measured on Node.js 20 and 24: 83 -> 78 and 104 -> 98
// MiB before any data) for code most never run; loaded on first use, they take that turn of the
// event loop 13-50 ms, once (a proxied cluster's first connection, the first OIDC refresh). Each
// is a stand-in module with the names the library imports: a name not listed fails the build (a
// missing export, or a namespace import's undefined member: see onLog below). A class is a
// function whose `new` gives an instance of the real class.
const LAZY = {
  'node-fetch': { default: 'function', Headers: 'class' },
  'socks-proxy-agent': { SocksProxyAgent: 'class' },
  hpagent: { HttpProxyAgent: 'class', HttpsProxyAgent: 'class' },
  // An ES module: loaded by import(), which the library awaits where it calls these.
  'openid-client': { refreshTokenGrant: 'async', discovery: 'async' },
};

/**
 * Arguments a stand-in hands on changed, as the text of a function of the call's arguments.
 * @kubernetes/client-node 1.4.0 gives openid-client's discovery() the issuer as a string, which
 * openid-client 6 refuses ('"server" must be an instance of URL', kubernetes-client/javascript
 * issue 2202): every OIDC token refresh failed. The stand-in passes a URL.
 */
const ADAPT = {
  'openid-client': { discovery: '(server, ...rest) => [typeof server === "string" ? new URL(server) : server, ...rest]' },
};
const LAZY_PREFIX = '\0lazy:';

/** The stand-in module for `id`: each name loads the real module the first time it is used. */
function lazyModule(id) {
  const load = JSON.stringify(id);
  const lines = [
    `import { createRequire } from 'node:module';`,
    `let real;`,
    `const load = () => (real ??= createRequire(import.meta.url)(${load}));`,
  ];
  for (const [name, how] of Object.entries(LAZY[id])) {
    const target = name === 'default' ? 'lazy_default' : name;
    const adapt = ADAPT[id]?.[name];
    const args = adapt ? `...(${adapt})(...args)` : '...args';
    if (how === 'class') lines.push(`function ${target}(...args) { return new (load().${name})(${args}); }`);
    else if (how === 'function') lines.push(`function ${target}(...args) { return load().${name}(${args}); }`);
    else lines.push(`async function ${target}(...args) { return (await import(${load})).${name}(${args}); }`);
    lines.push(name === 'default' ? `export default ${target};` : `export { ${target} };`);
  }
  return lines.join('\n');
}

await build({
  input: join(libDir, 'dist', 'config.js'),
  // A name the library takes from a stand-in that the stand-in lacks would be undefined at run
  // time: a build error instead.
  onLog: (level, log, handler) => handler(['MISSING_EXPORT', 'IMPORT_IS_UNDEFINED'].includes(log.code) ? 'error' : level, log),
  plugins: [
    {
      name: 'lazy-dependencies',
      // The library's imports get the stand-in; the stand-in's own import() is the real module.
      resolveId: (id, importer) => (!Object.hasOwn(LAZY, id) ? null : importer?.startsWith(LAZY_PREFIX) ? { id, external: true } : LAZY_PREFIX + id),
      load: (id) => (id.startsWith(LAZY_PREFIX) ? lazyModule(id.slice(LAZY_PREFIX.length)) : null),
    },
  ],
  cwd: root,
  platform: 'node',
  logLevel: 'warn',
  external: (id) => id.startsWith('node:') || (isDep(id) && !Object.hasOwn(LAZY, id)),
  treeshake: { moduleSideEffects: (id) => !id.startsWith(generated) },
  output: {
    file: join(root, 'dist', 'vendor', 'kube-config.js'),
    format: 'esm',
    banner: `// Generated by scripts/bundle-kube-config.mjs from @kubernetes/client-node ${lib.version}; do not edit.`,
  },
});
