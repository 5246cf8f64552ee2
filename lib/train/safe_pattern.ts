// Linear-time matching of parameter names against RegExp patterns, for patterns that come
// from files. JavaScript's RegExp backtracks, so a checkpoint holding /^(a+)+$/ next to a
// layer named 'aaaa…a!' would block the event loop for minutes; this matcher compiles a
// pattern to a Thompson NFA and runs all of its states side by side, one step per character
// of the name: at most (name length × program size) steps, whatever the pattern.
//
// The subset (enough for the patterns people write for parameter groups):
//   literals and escapes   a  \.  \n \r \t \v \f \0  \xHH  \uHHHH  \cX  \/ (any non-alphanumeric)
//   sets                   .  [abc]  [^a-z]  \d \D \w \W \s \S (also inside [ ])
//   anchors                ^  $  \b  \B
//   groups                 (…)  (?:…)  (?<name>…)  — all non-capturing here (a test needs no captures)
//   alternation            |
//   quantifiers            *  +  ?  {n}  {n,}  {n,m} (n, m ≤ MAX_REPEAT), greedy or lazy (the same for a test)
//   flags                  i, m, s; g, y and d are ignored (a name is tested whole, with no lastIndex)
// Refused: backreferences (\1, \k<name>), lookaround ((?=, (?!, (?<=, (?<!), Unicode mode (u, v),
// \p{…}, legacy octal escapes, letter escapes JavaScript reads as the bare letter (\a, \e, …),
// and patterns past the size limits below. Within the subset the answer is exactly RegExp.test's
// (test/train/param_groups.test.ts checks that against RegExp on a seeded random corpus).

/** Longest pattern source accepted. */
export const MAX_PATTERN_LENGTH = 256;
/** Largest n or m in a {n,m} quantifier. */
export const MAX_REPEAT = 64;
/** Largest compiled program (instructions), after {n,m} copies are expanded. */
export const MAX_PROGRAM_SIZE = 1024;

const SUBSET = 'supported: literals, escapes, ., [classes], \\d \\w \\s \\b, ^ $, groups, |, * + ? {n,m}; flags i m s (g y d ignored)';

// ---------------------------------------------------------------------------------------
// Character sets

/** A set of UTF-16 code units as sorted, disjoint [lo, hi] ranges. */
type Ranges = readonly (readonly [number, number])[];

const DIGITS: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
const SPACE: Ranges = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const LINE_TERMINATORS: Ranges = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];

function normalise(ranges: readonly (readonly [number, number])[]): Ranges {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(ranges: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of ranges) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0xffff) out.push([next, 0xffff]);
  return out;
}

function inRanges(ranges: Ranges, c: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid]!;
    if (c < r[0]) hi = mid - 1;
    else if (c > r[1]) lo = mid + 1;
    else return true;
  }
  return false;
}

// Case-insensitive matching without the u flag, as the spec's Canonicalize: a code unit maps
// to its single-unit upper case, except that nothing outside ASCII maps into ASCII. A set
// matches c when some member has c's canonical form, so each test looks at c's equivalents
// (the units with the same canonical form), computed once for the whole UTF-16 range.
let canonicalTable: Uint16Array | undefined;
let equivalentTable: Map<number, number[]> | undefined;

function canonical(c: number): number {
  if (!canonicalTable) {
    canonicalTable = new Uint16Array(0x10000);
    for (let u = 0; u < 0x10000; u++) {
      const upper = String.fromCharCode(u).toUpperCase();
      const cu = upper.length === 1 ? upper.charCodeAt(0) : u;
      canonicalTable[u] = u >= 128 && cu < 128 ? u : cu;
    }
  }
  return canonicalTable[c]!;
}

/** Every code unit whose canonical form is c's (c included). */
function equivalents(c: number): readonly number[] {
  if (!equivalentTable) {
    equivalentTable = new Map();
    for (let u = 0; u < 0x10000; u++) {
      const k = canonical(u);
      if (k === u) continue;
      const list = equivalentTable.get(k) ?? (canonical(k) === k ? [k] : []);
      list.push(u);
      equivalentTable.set(k, list);
    }
  }
  return equivalentTable.get(canonical(c)) ?? [c];
}

class CharSet {
  constructor(
    readonly ranges: Ranges,
    readonly negated: boolean,
    readonly ignoreCase: boolean,
  ) {}

  has(c: number): boolean {
    let found = inRanges(this.ranges, c);
    if (!found && this.ignoreCase) found = equivalents(c).some((e) => inRanges(this.ranges, e));
    return found !== this.negated;
  }
}

// ---------------------------------------------------------------------------------------
// Parsing: pattern source → syntax tree (only valid RegExp sources reach the parser)

type Assertion = 'start' | 'end' | 'boundary' | 'notBoundary';
type Node =
  | { t: 'set'; ranges: Ranges; negated: boolean }
  | { t: 'dot' }
  | { t: 'assert'; kind: Assertion }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'repeat'; item: Node; min: number; max: number };

/** Why a pattern is outside the subset. */
class Refusal {
  constructor(readonly reason: string) {}
}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

const isDigit = (ch: string | undefined) => ch !== undefined && ch >= '0' && ch <= '9';
const isLetter = (ch: string | undefined) => ch !== undefined && /^[A-Za-z]$/.test(ch);
const literal = (c: number): Node => ({ t: 'set', ranges: [[c, c]], negated: false });

class Parser {
  #i = 0;

  constructor(readonly src: string) {}

  parse(): Node {
    const node = this.#alternation();
    if (this.#i < this.src.length) refuse(`unexpected '${this.src[this.#i]}' at ${this.#i}`);
    return node;
  }

  #peek(offset = 0): string | undefined {
    return this.src[this.#i + offset];
  }

  #alternation(): Node {
    const items = [this.#sequence()];
    while (this.#peek() === '|') {
      this.#i++;
      items.push(this.#sequence());
    }
    return items.length === 1 ? items[0]! : { t: 'alt', items };
  }

  #sequence(): Node {
    const items: Node[] = [];
    for (let ch = this.#peek(); ch !== undefined && ch !== '|' && ch !== ')'; ch = this.#peek()) items.push(this.#term());
    return { t: 'seq', items };
  }

  #term(): Node {
    const ch = this.#peek()!;
    if (ch === '^' || ch === '$') {
      this.#i++;
      return { t: 'assert', kind: ch === '^' ? 'start' : 'end' };
    }
    if (ch === '\\' && (this.#peek(1) === 'b' || this.#peek(1) === 'B')) {
      this.#i += 2;
      return { t: 'assert', kind: this.src[this.#i - 1] === 'b' ? 'boundary' : 'notBoundary' };
    }
    const atom = this.#atom();
    return this.#quantifier(atom);
  }

  /** {n}, {n,} or {n,m} at the cursor, without consuming it; undefined when the text is not one (then '{' is a literal). */
  #braced(): { min: number; max: number; length: number } | undefined {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.#i));
    if (!m) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    return { min, max, length: m[0].length };
  }

  #quantifier(item: Node): Node {
    const ch = this.#peek();
    let min: number;
    let max: number;
    if (ch === '*' || ch === '+' || ch === '?') {
      this.#i++;
      [min, max] = ch === '*' ? [0, Infinity] : ch === '+' ? [1, Infinity] : [0, 1];
    } else if (ch === '{' && this.#braced()) {
      const b = this.#braced()!;
      const text = this.src.slice(this.#i, this.#i + b.length);
      this.#i += b.length;
      ({ min, max } = b);
      if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) refuse(`a count in ${text} is above ${MAX_REPEAT}`);
    } else {
      return item;
    }
    if (this.#peek() === '?') this.#i++; // lazy: the same answer for a test
    return { t: 'repeat', item, min, max };
  }

  #atom(): Node {
    const ch = this.src[this.#i++]!;
    switch (ch) {
      case '.':
        return { t: 'dot' };
      case '[':
        return this.#class();
      case '(':
        return this.#group();
      case '\\':
        return this.#escape(false);
      default:
        // '{' that is not a quantifier, '}' and ']' are literals here, as in every RegExp without u.
        return literal(ch.charCodeAt(0));
    }
  }

  #group(): Node {
    if (this.#peek() === '?') {
      const kind = this.src.slice(this.#i, this.#i + 3);
      if (kind.startsWith('?:')) this.#i += 2;
      else if (kind === '?<=' || kind === '?<!' || kind.startsWith('?=') || kind.startsWith('?!'))
        refuse('lookaround ((?=, (?!, (?<=, (?<!) is not supported');
      else if (kind.startsWith('?<'))
        this.#i = this.src.indexOf('>', this.#i) + 1; // named group
      else refuse(`group modifier '(${kind.slice(0, 2)}' is not supported`);
    }
    const node = this.#alternation();
    this.#i++; // ')', present: the source is a valid RegExp
    return node;
  }

  /** After '\': a set, or one code unit (as a set of one). Inside a class, \b is a backspace. */
  #escape(inClass: boolean): Node {
    const ch = this.src[this.#i++]!;
    switch (ch) {
      case 'd':
      case 'D':
        return { t: 'set', ranges: DIGITS, negated: ch === 'D' };
      case 'w':
      case 'W':
        return { t: 'set', ranges: WORD, negated: ch === 'W' };
      case 's':
      case 'S':
        return { t: 'set', ranges: SPACE, negated: ch === 'S' };
      case 'n':
        return literal(0x0a);
      case 'r':
        return literal(0x0d);
      case 't':
        return literal(0x09);
      case 'v':
        return literal(0x0b);
      case 'f':
        return literal(0x0c);
      case 'b':
        if (inClass) return literal(0x08);
        break;
      case '0':
        if (!isDigit(this.#peek())) return literal(0);
        refuse('legacy octal escapes (\\0 followed by a digit) are not supported');
      case 'x':
      case 'u': {
        const n = ch === 'x' ? 2 : 4;
        const hex = this.src.slice(this.#i, this.#i + n);
        if (!new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(hex)) refuse(`\\${ch} must be followed by ${n} hex digits`);
        this.#i += n;
        return literal(parseInt(hex, 16));
      }
      case 'c':
        if (isLetter(this.#peek())) return literal(this.src.charCodeAt(this.#i++) % 32);
        refuse('\\c must be followed by a letter');
      case 'k':
        refuse('backreferences (\\k<name>) are not supported');
      case 'p':
      case 'P':
        refuse('Unicode property escapes (\\p{…}) are not supported');
    }
    if (isDigit(ch)) refuse(`backreferences and octal escapes (\\${ch}) are not supported`);
    if (/^[A-Za-z0-9]$/.test(ch)) refuse(`the escape \\${ch} is not supported`);
    return literal(ch.charCodeAt(0)); // \. \/ \- … : the character itself
  }

  #class(): Node {
    const negated = this.#peek() === '^';
    if (negated) this.#i++;
    const ranges: [number, number][] = [];
    const add = (n: Node & { t: 'set' }) => ranges.push(...(n.negated ? complement(n.ranges) : n.ranges).map(([a, b]) => [a, b] as [number, number]));
    const single = (n: Node & { t: 'set' }): number | undefined =>
      !n.negated && n.ranges.length === 1 && n.ranges[0]![0] === n.ranges[0]![1] ? n.ranges[0]![0] : undefined;
    while (this.#peek() !== ']') {
      const rawDash = this.#peek() === '-';
      const a = this.#classAtom();
      if (this.#peek() === '-' && this.#peek(1) !== ']' && this.#peek(1) !== undefined) {
        this.#i++;
        const rawDashEnd = this.#peek() === '-';
        const b = this.#classAtom();
        const lo = single(a);
        const hi = single(b);
        if (lo === undefined || hi === undefined || rawDash || rawDashEnd) refuse('a range in [ ] must run between two single characters');
        ranges.push([lo, hi]);
      } else {
        add(a);
      }
    }
    this.#i++; // ']'
    return { t: 'set', ranges: normalise(ranges), negated };
  }

  #classAtom(): Node & { t: 'set' } {
    const ch = this.src[this.#i++]!;
    if (ch !== '\\') return literal(ch.charCodeAt(0)) as Node & { t: 'set' };
    if (this.#peek() === 'B') refuse('\\B inside [ ] is not supported');
    if (this.#peek() === '-') {
      this.#i++;
      return literal(0x2d) as Node & { t: 'set' };
    }
    return this.#escape(true) as Node & { t: 'set' };
  }
}

// ---------------------------------------------------------------------------------------
// Compiling: syntax tree → program (a Thompson NFA)

const enum Op {
  Char,
  Assert,
  Split,
  Jump,
  Match,
}

interface Program {
  op: Op[];
  /** Char: index into sets; Assert: an Assertion; Split / Jump: the first target. */
  a: number[];
  /** Split: the second target. */
  b: number[];
  sets: CharSet[];
}

const ASSERTIONS: readonly Assertion[] = ['start', 'end', 'boundary', 'notBoundary'];

/**
 * Whether `n` compiles to no instructions (it can only match the empty string). Repeating such
 * an item changes nothing, and expanding it anyway would loop without reaching the size limit
 * (((a{0}){64}){64}… would take 64^depth iterations).
 */
function emitsNothing(n: Node): boolean {
  switch (n.t) {
    case 'seq':
      return n.items.every(emitsNothing);
    case 'alt':
      return n.items.length === 1 && emitsNothing(n.items[0]!);
    case 'repeat':
      return n.max === 0 || emitsNothing(n.item);
    default:
      return false;
  }
}

function compile(root: Node, flags: string): Program {
  const ignoreCase = flags.includes('i');
  const dotAll = flags.includes('s');
  const p: Program = { op: [], a: [], b: [], sets: [] };
  const emit = (op: Op, a = 0, b = 0): number => {
    if (p.op.length >= MAX_PROGRAM_SIZE) refuse(`it compiles to more than ${MAX_PROGRAM_SIZE} instructions (fewer or smaller {n,m} repeats)`);
    p.op.push(op);
    p.a.push(a);
    p.b.push(b);
    return p.op.length - 1;
  };
  const gen = (n: Node): void => {
    switch (n.t) {
      case 'set':
      case 'dot':
        // '.' is anything but a line terminator, or anything at all with the s flag.
        if (n.t === 'dot') p.sets.push(new CharSet(dotAll ? [] : LINE_TERMINATORS, true, false));
        else p.sets.push(new CharSet(n.ranges, n.negated, ignoreCase));
        emit(Op.Char, p.sets.length - 1);
        return;
      case 'assert':
        emit(Op.Assert, ASSERTIONS.indexOf(n.kind));
        return;
      case 'seq':
        for (const item of n.items) gen(item);
        return;
      case 'alt': {
        // split L1, next; L1: item; jump end; next: split … ; last item; end:
        const jumps: number[] = [];
        n.items.forEach((item, k) => {
          if (k < n.items.length - 1) {
            const split = emit(Op.Split);
            p.a[split] = split + 1;
            gen(item);
            jumps.push(emit(Op.Jump));
            p.b[split] = p.op.length;
          } else {
            gen(item);
          }
        });
        for (const j of jumps) p.a[j] = p.op.length;
        return;
      }
      case 'repeat': {
        if (emitsNothing(n.item)) return;
        for (let k = 0; k < n.min; k++) gen(n.item);
        if (n.max === Infinity) {
          // loop: split body, out; body; jump loop; out:
          const loop = emit(Op.Split);
          p.a[loop] = loop + 1;
          gen(n.item);
          emit(Op.Jump, loop);
          p.b[loop] = p.op.length;
        } else {
          for (let k = n.min; k < n.max; k++) {
            const split = emit(Op.Split);
            p.a[split] = split + 1;
            gen(n.item);
            p.b[split] = p.op.length;
          }
        }
        return;
      }
    }
  };
  gen(root);
  emit(Op.Match);
  return p;
}

// ---------------------------------------------------------------------------------------
// The pattern

const SUPPORTED_FLAGS = /^[dgimsy]*$/;

function display(source: string, flags: string): string {
  const s = source.length > 80 ? `${source.slice(0, 80)}…` : source;
  return `/${s}/${flags}`;
}

function isWord(c: number): boolean {
  return inRanges(WORD, c);
}

function isLineTerminator(c: number): boolean {
  return inRanges(LINE_TERMINATORS, c);
}

/**
 * A RegExp pattern, checked against the subset above and compiled once; `test(name)` runs in
 * time linear in the name. `source` and `flags` are kept as given, so the pattern is stored
 * and rebuilt as the same RegExp.
 */
export class SafePattern {
  readonly #program: Program;
  readonly #multiline: boolean;
  /** Starts with ^ and is not multiline: a match can only start at 0. */
  readonly #anchored: boolean;
  // Scratch for test(): two state lists, the closure stack, and `seen[pc] === mark` for a
  // state already in the list being built (test is synchronous, so one set per pattern).
  readonly #lists: [Int32Array, Int32Array];
  readonly #stack: Int32Array;
  readonly #seen: Int32Array;
  #mark = 0;

  private constructor(
    readonly source: string,
    readonly flags: string,
    program: Program,
  ) {
    this.#program = program;
    this.#multiline = flags.includes('m');
    this.#anchored = !this.#multiline && program.op[0] === Op.Assert && ASSERTIONS[program.a[0]!] === 'start';
    const size = program.op.length;
    this.#lists = [new Int32Array(size), new Int32Array(size)];
    this.#stack = new Int32Array(size);
    this.#seen = new Int32Array(size);
  }

  /** The pattern, or undefined when it is outside the subset (or not a valid RegExp): see whyRefused. */
  static tryCompile(source: string, flags: string): SafePattern | undefined {
    const r = SafePattern.#build(source, flags);
    return r instanceof SafePattern ? r : undefined;
  }

  /** Why tryCompile refuses the pattern, naming it ("/(?=a)/ is outside …"), or undefined when it does not. */
  static whyRefused(source: string, flags: string): string | undefined {
    const r = SafePattern.#build(source, flags);
    return r instanceof SafePattern ? undefined : `${display(String(source), String(flags))} ${r}`;
  }

  static #build(source: string, flags: string): SafePattern | string {
    if (typeof source !== 'string' || typeof flags !== 'string') return 'must have a string source and flags';
    if (source.length > MAX_PATTERN_LENGTH) return `is ${source.length} characters long, above the limit of ${MAX_PATTERN_LENGTH}`;
    try {
      new RegExp(source, flags); // syntax only: nothing is matched here
    } catch (err) {
      return `is not a valid RegExp (${(err as Error).message})`;
    }
    if (!SUPPORTED_FLAGS.test(flags)) return `has flags '${flags}'; only i, m and s are supported (g, y and d are ignored; no u or v) — ${SUBSET}`;
    try {
      return new SafePattern(source, flags, compile(new Parser(source).parse(), flags));
    } catch (err) {
      if (err instanceof Refusal) return `is outside the linear-time subset: ${err.reason} (${SUBSET})`;
      throw err;
    }
  }

  /** Instructions in the compiled program: test() costs at most this many steps per character. */
  get size(): number {
    return this.#program.op.length;
  }

  /** Whether the pattern matches somewhere in `name` (RegExp.prototype.test, without lastIndex). */
  test(name: string): boolean {
    const sets = this.#program.sets;
    const charSet = this.#program.a;
    let [current, next] = this.#lists;
    let count = 0;
    this.#seen.fill(-1);
    this.#mark = 0;
    for (let i = 0; ; i++) {
      // A match may start anywhere: the start state joins the list at every position (only
      // at 0 for a pattern anchored at the start, which then fails once its list runs dry).
      if (i === 0 || !this.#anchored) count = this.#add(current, count, 0, name, i);
      if (count < 0) return true;
      if (i === name.length || (count === 0 && this.#anchored)) return false;
      const c = name.charCodeAt(i);
      this.#mark++;
      let nextCount = 0;
      for (let k = 0; k < count; k++) {
        const pc = current[k]!;
        if (sets[charSet[pc]!]!.has(c)) {
          nextCount = this.#add(next, nextCount, pc + 1, name, i + 1);
          if (nextCount < 0) return true;
        }
      }
      [current, next] = [next, current];
      count = nextCount;
    }
  }

  /**
   * Adds `start` and every state it reaches without reading a character (at position i of s)
   * to `list`, which holds `count` states; returns the new count, or -1 on reaching Match.
   * A state is marked when pushed, so each is pushed at most once and the stack never overflows.
   */
  #add(list: Int32Array, count: number, start: number, s: string, i: number): number {
    const { op, a, b } = this.#program;
    const stack = this.#stack;
    const seen = this.#seen;
    const mark = this.#mark;
    if (seen[start] === mark) return count;
    seen[start] = mark;
    let top = 0;
    stack[top++] = start;
    while (top > 0) {
      const pc = stack[--top]!;
      let to1 = -1;
      let to2 = -1;
      switch (op[pc]!) {
        case Op.Char:
          list[count++] = pc;
          break;
        case Op.Match:
          return -1;
        case Op.Jump:
          to1 = a[pc]!;
          break;
        case Op.Split:
          to1 = b[pc]!;
          to2 = a[pc]!;
          break;
        case Op.Assert:
          if (this.#holds(ASSERTIONS[a[pc]!]!, s, i)) to1 = pc + 1;
          break;
      }
      if (to1 >= 0 && seen[to1] !== mark) {
        seen[to1] = mark;
        stack[top++] = to1;
      }
      if (to2 >= 0 && seen[to2] !== mark) {
        seen[to2] = mark;
        stack[top++] = to2;
      }
    }
    return count;
  }

  #holds(kind: Assertion, s: string, i: number): boolean {
    switch (kind) {
      case 'start':
        return i === 0 || (this.#multiline && isLineTerminator(s.charCodeAt(i - 1)));
      case 'end':
        return i === s.length || (this.#multiline && isLineTerminator(s.charCodeAt(i)));
      case 'boundary':
      case 'notBoundary': {
        const before = i > 0 && isWord(s.charCodeAt(i - 1));
        const after = i < s.length && isWord(s.charCodeAt(i));
        return (before !== after) === (kind === 'boundary');
      }
    }
  }

  toString(): string {
    return `/${this.source}/${this.flags}`;
  }
}
