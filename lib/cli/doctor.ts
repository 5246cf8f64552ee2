// `resnet-native doctor`: which native addon loaded, CPU features, threads, CUDA
// (the report itself is lib/doctor.ts).
import { parse } from './args.js';
import { NAME, printHelp } from './output.js';

export const DOCTOR_HELP = `Usage: ${NAME} doctor [options]

Prints what this installation runs with: the addon file that loaded and whether it is a
prebuild or a source build, Node and Node-API versions, platform and glibc, the CPU features
the kernels use, threads, and the CUDA plugin's state (driver, GPUs, cuDNN) or why it is
unavailable. Exits with status 1 when the addon does not load.

  --json                 print the report as JSON
  -h, --help             show this help
`;

export async function run(args: string[]): Promise<void> {
  const { values: v } = parse('doctor', args, { json: { type: 'boolean' } });
  if (v.help) return printHelp(DOCTOR_HELP);
  const { doctor, formatDoctorReport } = await import('../doctor.js');
  const report = await doctor();
  process.stdout.write(v.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
  if (!report.addon.loaded) throw new Error('the native addon did not load (see the report above)');
}
