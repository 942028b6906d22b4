export async function runCli(argv: string[]): Promise<void> {
  void argv;
  process.stderr.write('hardsnap: not built yet\n');
  process.exit(1);
}
