// Builds the viewer into dist/ (the page bundles as ES modules, the static HTML and CSS) and the
// WebXR emulator the browser tests inject into dist-testing/. Run by `make viewer`; neither
// folder is committed.
import { build } from 'esbuild';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const src = join(here, 'src');
const dist = join(here, 'dist');
// Outside dist/: the server never serves it; tests inject it into their pages themselves.
const testing = join(here, 'dist-testing');

rmSync(dist, { recursive: true, force: true });
rmSync(testing, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
mkdirSync(testing, { recursive: true });

const common = { bundle: true, minify: true, target: 'es2022', logLevel: 'warning' };
await build({
  ...common,
  entryPoints: { viewer: join(src, 'main.js'), assets: join(src, 'assets-page.js') },
  outdir: dist,
  format: 'esm',
});
// The emulator is a development runtime: it is loaded only by tests that inject it into a page.
await build({
  ...common,
  entryPoints: [join(src, 'testing', 'xr-emulator.js')],
  outfile: join(testing, 'xr-emulator.js'),
  format: 'iife',
});
for (const name of readdirSync(src)) {
  if (name.endsWith('.html') || name.endsWith('.css') || name.endsWith('.svg')) {
    cpSync(join(src, name), join(dist, name));
  }
}
console.log(`viewer built in ${dist}`);
