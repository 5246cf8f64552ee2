#!/usr/bin/env python3
"""Reads a TensorBoard log folder with TensorBoard's own reader and prints what it holds as JSON.

For each run (a folder holding event files: <logdir>/train, <logdir>/validation, …),
tensorboard.backend.event_processing.event_accumulator.EventAccumulator loads every event
file (purging orphaned data after SessionLog START, as TensorBoard does), and this prints

  {"<run>": {"scalars": {"<tag>": [[step, value], …]},
             "histograms": {"<tag>": [{"step", "num", "min", "max", "buckets"}, …]}}}

Used to check resnet-native's tensorBoard callback: `--log tensorboard` writes <run dir>/tensorboard.

Usage: python3 scripts/read-tensorboard-events.py <logdir>   (needs tensorboard)
"""
import json
import os
import sys

from tensorboard.backend.event_processing import event_accumulator


def runs(logdir):
    for root, _dirs, files in sorted(os.walk(logdir)):
        if any('tfevents' in f for f in files):
            yield os.path.relpath(root, logdir), root


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = {}
    for name, path in runs(sys.argv[1]):
        acc = event_accumulator.EventAccumulator(path, size_guidance={'scalars': 0, 'histograms': 0})
        acc.Reload()
        tags = acc.Tags()
        out[name] = {
            'scalars': {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in sorted(tags['scalars'])},
            'histograms': {
                t: [{'step': e.step, 'num': e.histogram_value.num, 'min': e.histogram_value.min,
                     'max': e.histogram_value.max, 'buckets': len(e.histogram_value.bucket)}
                    for e in acc.Histograms(t)]
                for t in sorted(tags['histograms'])
            },
        }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
