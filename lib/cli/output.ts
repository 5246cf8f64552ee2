// What the CLI prints: its name (the prefix of every error line) and stdout lines.

export const NAME = 'resnet-native';

/** One line on stdout. */
export function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** A help text (already ends with a newline) on stdout. */
export function printHelp(text: string): void {
  process.stdout.write(text);
}
