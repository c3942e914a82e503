"""``train.py`` training the test-sized network, for tests that start it in other processes:
``torchrun ... tests/train_test_sized.py <train.py flags>``."""

from __future__ import annotations

import sys

import train
from tests.train_helpers import config_of_test_network
from training import config


def main() -> int:
    config.config_from_args = config_of_test_network
    return train.main()


if __name__ == "__main__":
    sys.exit(main())
