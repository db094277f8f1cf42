// A message's text: Markdown once the renderer (a chunk of its own) is loaded, plain text
// until then. The app starts loading it on sign-in, so it is usually there before history.
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';

type Renderer = typeof import('../markdown.js');
let renderer: Renderer | null = null;
let loading: Promise<Renderer> | null = null;

export function loadMarkdown(): Promise<Renderer> {
  loading ??= import('../markdown.js').then((m) => (renderer = m));
  loading.catch(() => {
    loading = null;
  });
  return loading;
}

export function MessageText({
  text,
  after,
  linkTabIndex,
  mentions,
  me,
}: {
  text: string;
  after?: VNode;
  linkTabIndex?: number;
  /** "@" tokens to mark as mentions (user ids, `room`, `here`), and my id among them. */
  mentions?: Set<string>;
  me?: string;
}) {
  const [, ready] = useState(renderer !== null);
  useEffect(() => {
    if (!renderer)
      void loadMarkdown().then(
        () => ready(true),
        () => {},
      );
  }, []);
  if (!renderer)
    return (
      <p>
        {text}
        {after}
      </p>
    );
  return <>{renderer.renderMarkdown(text, after, { linkTabIndex, mentions, me })}</>;
}
