// Echoing what a client sent back in an error body: bounded, on one line, and inert.

/**
 * A client-supplied value quoted for a one-line text answer: at most `max` characters, every
 * control character (CR, LF, NUL …) and every character a browser could read as markup
 * (`<`, `>`, `&`) escaped as \uXXXX, inside double quotes. Pure.
 */
export function quoteInput(s: string, max = 120): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(cut).replace(
    /[<>&\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
