"""What every package of glow-tf shares, below all of them: the error contract of its commands and
writing files without losing what was there.

    errors   UserError (a failure the user can fix, with its exit status), run_cli, warn, first_line
    files    atomic writes, and a failed write as one WriteError naming the path and the free space

tfrecords_tools, data_loaders and glow_tf all import it; it imports only the standard library.
"""
