"""The HEAR 2021 API under the name HEAR tools are given: `hear-validator audioembed.hear -m MODEL`,
`python -m audioembed.hear MODULE ARGS`. It lives in integrations/hear.py."""

from .integrations.hear import (  # noqa: F401
    HearModel,
    _main,
    get_scene_embeddings,
    get_timestamp_embeddings,
    load_model,
)

if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
