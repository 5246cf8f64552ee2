#!/usr/bin/env python3
"""Writes test/fixtures/tensorboard/: event files written by TensorBoard's and TensorFlow's own
writers, for test/train/tensorboard_fixture.test.ts (CI has no Python).

  tensorboard-writer/events.out.tfevents.fixture.tensorboard
      tensorboard.summary.writer.event_file_writer.EventFileWriter (pure Python, the writer
      behind torch.utils.tensorboard and tensorboardX): the file_version event, then Events
      with Summary.Value.simple_value scalars and one HistogramProto, with fixed wall times.
  tf-summary/events.out.tfevents.fixture.tf
      tf.summary.create_file_writer (TensorFlow 2's C++ writer; Keras' TensorBoard callback
      uses it): scalars stored as tensor summaries (Value.tensor), which TensorBoard reads too.
  expected.json
      what was written: tags, steps, values, wall times, histogram contents.

Usage (TensorFlow's venv, with tensorboard importable):
  PYTHONPATH=<dir with tensorboard> /work/venv-keras/bin/python scripts/make-tensorboard-fixture.py [out_dir]
"""
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'tensorboard')

SCALARS = {
    'epoch_loss': [(1, 2.5), (2, 1.25), (3, 0.625)],
    'epoch_accuracy': [(1, 0.125), (2, 0.5), (3, 0.875)],
    'batch_learning_rate': [(10, 0.1), (20, 0.05), (1234567, 1e-5)],
}
WALL_TIME = 1700000000.5
HISTOGRAM = {
    'tag': 'conv1/kernel/histogram',
    'step': 3,
    'min': -1.5,
    'max': 2.0,
    'num': 10.0,
    'sum': 3.25,
    'sum_squares': 9.5,
    'bucket_limit': [-0.5, 0.5, 2.0],
    'bucket': [3.0, 4.0, 3.0],
}


def only_file(d):
    files = [f for f in os.listdir(d) if 'tfevents' in f]
    assert len(files) == 1, files
    return os.path.join(d, files[0])


def tensorboard_writer(out_dir):
    tmp = tempfile.mkdtemp()
    w = EventFileWriter(tmp)
    k = 0
    for tag, points in SCALARS.items():
        for step, value in points:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            w.add_event(event_pb2.Event(wall_time=WALL_TIME + k, step=step, summary=summary))
            k += 1
    h = HISTOGRAM
    histo = summary_pb2.HistogramProto(
        min=h['min'], max=h['max'], num=h['num'], sum=h['sum'], sum_squares=h['sum_squares'],
        bucket_limit=h['bucket_limit'], bucket=h['bucket'])
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=h['tag'], histo=histo)])
    w.add_event(event_pb2.Event(wall_time=WALL_TIME + k, step=h['step'], summary=summary))
    w.close()
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(only_file(tmp), os.path.join(out_dir, 'events.out.tfevents.fixture.tensorboard'))
    shutil.rmtree(tmp)


def tf_summary(out_dir):
    import tensorflow as tf
    tmp = tempfile.mkdtemp()
    writer = tf.summary.create_file_writer(tmp)
    with writer.as_default():
        for tag, points in SCALARS.items():
            for step, value in points:
                tf.summary.scalar(tag, value, step=step)
    writer.close()
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(only_file(tmp), os.path.join(out_dir, 'events.out.tfevents.fixture.tf'))
    shutil.rmtree(tmp)


def main():
    os.makedirs(OUT, exist_ok=True)
    tensorboard_writer(os.path.join(OUT, 'tensorboard-writer'))
    tf_summary(os.path.join(OUT, 'tf-summary'))
    expected = {
        'wall_time': WALL_TIME,
        'scalars': {tag: [[s, v] for s, v in points] for tag, points in SCALARS.items()},
        'histogram': HISTOGRAM,
    }
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
