// TensorBoard's event format as its own writers produce it (test/fixtures/tensorboard/, made by
// scripts/make-tensorboard-fixture.py with tensorboard's EventFileWriter and TensorFlow's
// tf.summary): the test's independent reader parses them, and lib's encoder, given the same
// events, produces the same records byte for byte (same framing, same CRCs, same protobuf
// field order), which the reader also accepts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { tfRecord } from '../../lib/io/tfrecord.js';
import { crc32c, maskCrc } from '../../lib/io/crc32c.js';
import { fileVersionEvent, histogramEvent, scalarEvent } from '../../lib/train/tensorboard_events.js';
import { crc32cBitwise, readEvents, readRecords, scalars } from '../support/tfevents.js';

const FIXTURES = join(__dirname, '..', 'fixtures', 'tensorboard');

interface Expected {
  wall_time: number;
  scalars: Record<string, [number, number][]>;
  histogram: {
    tag: string;
    step: number;
    min: number;
    max: number;
    num: number;
    sum: number;
    sum_squares: number;
    bucket_limit: number[];
    bucket: number[];
  };
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Expected;

function fixture(sub: string): Uint8Array {
  const dir = join(FIXTURES, sub);
  const [file] = readdirSync(dir).filter((f) => f.includes('tfevents'));
  return new Uint8Array(readFileSync(join(dir, file!)));
}

const f32 = (v: number) => Math.fround(v);

describe('TensorBoard fixtures (written by TensorBoard / TensorFlow)', () => {
  it('CRC-32C matches the standard check value and the bitwise reference', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32c(check)).toBe(0xe3069283); // the CRC-32C check value (RFC 3720)
    expect(crc32cBitwise(check)).toBe(0xe3069283);
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff);
    for (const n of [0, 1, 7, 8, 9, 63, 1000]) expect(crc32c(bytes.subarray(0, n))).toBe(crc32cBitwise(bytes.subarray(0, n)));
    expect(crc32c(bytes.subarray(300), crc32c(bytes.subarray(0, 300)))).toBe(crc32c(bytes));
    expect(maskCrc(0)).toBe(0xa282ead8);
  });

  it("tensorboard's EventFileWriter file: the reader finds the file version, scalars and histogram", () => {
    const events = readEvents(fixture('tensorboard-writer'));
    expect(events[0]!.fileVersion).toBe('brain.Event:2');
    const s = scalars(events);
    for (const [tag, points] of Object.entries(expected.scalars)) expect(s.get(tag)).toEqual(points.map(([step, v]) => [step, f32(v)]));
    const h = events.flatMap((e) => e.values).find((v) => v.histo)!;
    expect(h.tag).toBe(expected.histogram.tag);
    const { min, max, num, sum, sum_squares, bucket_limit, bucket } = expected.histogram;
    expect(h.histo).toEqual({ min, max, num, sum, sumSquares: sum_squares, bucketLimit: bucket_limit, bucket });
  });

  it("TensorFlow's tf.summary file: tensor-valued scalars at their steps", () => {
    const events = readEvents(fixture('tf-summary'));
    expect(events[0]).toMatchObject({ fileVersion: 'brain.Event:2', writer: 'tensorflow.core.util.events_writer' });
    const s = scalars(events);
    for (const [tag, points] of Object.entries(expected.scalars)) expect(s.get(tag)).toEqual(points.map(([step, v]) => [step, f32(v)]));
  });

  it('our encoder writes the same records, byte for byte, for the same events', () => {
    const records = readRecords(fixture('tensorboard-writer'));
    // Record 0 is the file_version event, stamped with the writer's own clock: same bytes given its wall time.
    const first = readEvents(fixture('tensorboard-writer'))[0]!;
    expect(first.writer).toBe('tensorboard.summary.writer.event_file_writer');
    expect(tfRecord(fileVersionEvent(first.wallTime, first.writer))).toEqual(frame(records[0]!));
    let k = 0;
    for (const [tag, points] of Object.entries(expected.scalars)) {
      for (const [step, value] of points) {
        const ours = tfRecord(scalarEvent(tag, value, step, expected.wall_time + k));
        expect(ours, `${tag} at ${step}`).toEqual(frame(records[k + 1]!));
        expect(readRecords(ours)).toHaveLength(1);
        k++;
      }
    }
    const h = expected.histogram;
    const ours = histogramEvent(
      h.tag,
      { min: h.min, max: h.max, num: h.num, sum: h.sum, sumSquares: h.sum_squares, bucketLimit: h.bucket_limit, bucket: h.bucket },
      h.step,
      expected.wall_time + k,
    );
    expect(tfRecord(ours)).toEqual(frame(records[k + 1]!));
    expect(records).toHaveLength(k + 2);
  });
});

/** The whole record (framing included) of a record's data, as the fixture holds it. */
function frame(data: Uint8Array): Uint8Array {
  const whole = new Uint8Array(data.buffer, data.byteOffset - 12, data.length + 16);
  return Uint8Array.from(whole);
}
