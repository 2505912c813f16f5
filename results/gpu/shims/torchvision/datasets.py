"""torchvision.datasets without the downloads: the peer writes airbench's data files, so none is needed."""


class CIFAR10:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("torchvision is not installed: airbench's data files should have been written by the "
                           "peer (tests/baselines/test_airbench_peer.py), not downloaded")
