"""Converters from image datasets to the original's sharded TFRecords (spec §4.1, §4.2).

`shards` is the library; `celeba`, `lsun`, `imagenet_oord` and `images` are thin command lines over it
(`python -m tfrecords_tools.<name> --help`), and `verify` checks a converted folder. Importing this package
does not import TensorFlow, so worker processes start quickly.
"""
