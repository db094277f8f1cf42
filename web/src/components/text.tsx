// A message's text: Markdown once the renderer (a chunk of its own, markdown-loader.ts) is
// loaded, plain text until then. The app starts loading it on sign-in, so it is usually there
// before history.
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { loadMarkdown, markdown } from '../markdown-loader.js';

export { loadMarkdown } from '../markdown-loader.js';

/** Draws the component again once the renderer is loaded (for texts shown as written until then). */
export function useMarkdown(): void {
  const [, ready] = useState(markdown() !== null);
  useEffect(() => {
    if (!markdown())
      void loadMarkdown().then(
        () => ready(true),
        () => {},
      );
  }, []);
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
  useMarkdown();
  const renderer = markdown();
  if (!renderer)
    return (
      <p>
        {text}
        {after}
      </p>
    );
  return <>{renderer.renderMarkdown(text, after, { linkTabIndex, mentions, me })}</>;
}
