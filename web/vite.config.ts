// Vite build of the web app: web/ in, dist/web/ out, where the Parley server serves it from.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  // Preact's JSX runtime through Vite's own transform (Oxc): no Babel plugin needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    reportCompressedSize: false,
    rolldownOptions: {
      // The SDK loads `ws` only where no global WebSocket exists (Node); browsers have one.
      external: ['ws'],
    },
  },
  server: {
    // `npx vite web` for development, talking to a Parley node on its default port.
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/ws': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
});
