"""Train (or read from the cache) a dataset's reference CNN and print the time and the test
accuracy. The CIFAR-10 figures in the README come from this script:

    ANNEALQ_DATA=../shared/data python benchmarks/train_cnn.py cifar10
"""

import logging
import sys
import time

from annealq.data.cnn import reference_cnn
from annealq.data.datasets import load_dataset
from annealq.data.models import accuracy

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
data = load_dataset(sys.argv[1] if len(sys.argv) > 1 else "cifar10")
start = time.time()
model, path = reference_cnn(data, seed=0)
seconds = time.time() - start
print(
    "trained", seconds, "s", path, "test acc", accuracy(model, data.x_test, data.y_test), flush=True
)
