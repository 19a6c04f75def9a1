"""Converters from image datasets to openai/glow's sharded TFRecords, and a checker for them.

    format      the on-disk format: features, file names, record framing, manifests (no TensorFlow)
    inputs      input images as items: files, lmdb values, records of a PGGAN TFRecord
    imaging     crop, resize and levels of detail
    writer      shard assignment, atomic shard sets, manifests, the summary table
    cli         the shared flags and the one-line error path
    celeba, lsun, imagenet_oord, images   the converters (`python -m tfrecords_tools.<name> --help`)
    verify      checks every record of a converted folder

Importing this package does not import TensorFlow, so worker processes start quickly.
"""
