"""A worked torch-lab project: a small CNN on MNIST (see experiments/00_mnist_demo)."""
