// How hard a password of a built-in account is to guess, estimated with zxcvbn-ts (common
// passwords, names, words, keyboard walks, dates, repeats). One rule for both sides: the server
// refuses what scores below MIN_PASSWORD_SCORE, and the web app says so as the user types. The
// dictionaries are large, so they load on first use (in the browser, as a chunk of their own).

/** zxcvbn scores 0–4; 2 means more than 10^6 guesses, beyond online guessing and common lists. */
export const MIN_PASSWORD_SCORE = 2;

export interface PasswordStrength {
  score: 0 | 1 | 2 | 3 | 4;
  /** Strong enough to be accepted. */
  ok: boolean;
  /** What is wrong, in a sentence (empty when nothing specific is). */
  warning: string;
  suggestions: string[];
}

interface Estimator {
  check(password: string, userInputs?: string[]): { score: number; feedback: { warning: string | null; suggestions: string[] } };
}

let estimator: Promise<Estimator> | null = null;

/** Node loads these packages as CommonJS (exports under `default`), bundlers as ES modules. */
function exportsOf<T extends object>(m: T | { default: T }, name: string): T {
  return (name in m ? m : (m as { default: T }).default) as T;
}

function load(): Promise<Estimator> {
  estimator ??= Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')]).then(
    ([coreModule, commonModule, enModule]) => {
      const core = exportsOf(coreModule, 'ZxcvbnFactory');
      const common = exportsOf(commonModule, 'dictionary');
      const en = exportsOf(enModule, 'dictionary');
      return new core.ZxcvbnFactory({
        dictionary: { ...common.dictionary, ...en.dictionary },
        graphs: common.adjacencyGraphs,
        translations: en.translations,
      });
    },
  );
  estimator.catch(() => {
    estimator = null;
  });
  return estimator;
}

/** Estimates `password`; `userInputs` (username, display name) count as known to an attacker. */
export async function passwordStrength(password: string, userInputs: string[] = []): Promise<PasswordStrength> {
  const r = (await load()).check(password, userInputs.filter(Boolean));
  const score = Math.max(0, Math.min(4, r.score)) as PasswordStrength['score'];
  return { score, ok: score >= MIN_PASSWORD_SCORE, warning: r.feedback.warning ?? '', suggestions: r.feedback.suggestions };
}
