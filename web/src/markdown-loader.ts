// The Markdown renderer is a chunk of its own (markdown-it is most of its size): the app starts
// loading it on sign-in. Until it is there, texts show as written.
type Renderer = typeof import('./markdown.js');
let renderer: Renderer | null = null;
let loading: Promise<Renderer> | null = null;

export function loadMarkdown(): Promise<Renderer> {
  loading ??= import('./markdown.js').then((m) => (renderer = m));
  loading.catch(() => {
    loading = null;
  });
  return loading;
}

/** The renderer, once loaded. */
export function markdown(): Renderer | null {
  return renderer;
}

/** A message's text as it reads once drawn, on one line (see markdownToPlain); as written until the renderer is loaded. */
export function plainText(text: string): string {
  return renderer ? renderer.markdownToPlain(text) : text;
}
