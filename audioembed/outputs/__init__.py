"""What `audioembed embed` and `embed-cluster` write, one module per format with its reader beside its writer.

    names.py    the file names OUT can hold, defined once
    tree.py     one .npy per input (the Job that writes it, and `plan`), and the tree's reader
    stack.py    --stack: embeddings.npy + index.csv, assembled from parts; its reader
    parquet.py  embed-cluster's Parquet shards: schema, writes, resume scan; its readers
    record.py   OUT/audioembed.json: the model that wrote OUT (`claim`), read back by resume and search
    lock.py     one embed job at a time on OUT
    npy.py      a .npy read safely (a FIFO, a pickle, a header that lies)
    index.py    `load_index`: the first format reader that recognises a folder
    command.py  the `audioembed embed` command

The names below are the ones `audioembed.outputs` held when it was one module.
"""

from .lock import OutLock
from .names import PARTS, RECORD
from .record import OutputError, claim, describe_model, read_model_record, same_model
from .stack import assemble_stack, clear_parts, load_stack, read_stack, row_key
from .tree import Job, input_key, plan, read_sources, record_sources

__all__ = [
    "PARTS", "RECORD", "Job", "OutLock", "OutputError", "assemble_stack", "claim", "clear_parts",
    "describe_model", "input_key", "load_stack", "plan", "read_model_record", "read_sources", "read_stack",
    "record_sources", "row_key", "same_model",
]
