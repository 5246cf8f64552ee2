// HTML built with one tagged template, `html`, that escapes every interpolated value unless it
// is already markup (Markup, from html`` itself or from raw() for text the code wrote). Strings
// from files (class names, paths, error messages) can only ever be interpolated, so a class
// named <script> renders as text.

/** A piece of markup that is safe to insert as it is. */
export class Markup {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or attribute content (both quotes escaped). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

type Value = Markup | string | number | undefined | null | false | readonly Value[];

function render(v: Value): string {
  if (v === undefined || v === null || v === false) return '';
  if (v instanceof Markup) return v.text;
  if (Array.isArray(v)) return (v as readonly Value[]).map(render).join('');
  return escapeHtml(String(v as string | number));
}

/** html`<td>${name}</td>`: the literal parts as they are, every value escaped (Markup and arrays of it kept). */
export function html(parts: TemplateStringsArray, ...values: Value[]): Markup {
  let out = parts[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + parts[i + 1]!;
  return new Markup(out);
}

/** Markup the code itself wrote (CSS, numbers formatted here): never for text read from a file. */
export function raw(text: string): Markup {
  return new Markup(text);
}
