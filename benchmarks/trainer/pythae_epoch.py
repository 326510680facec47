"""One epoch of pythae 0.1.2's trainer on the benchmark's VAE, timed; run by pythae's own Python environment.

    /path/to/pythae-venv/bin/python benchmarks/trainer/pythae_epoch.py --data train_x.npy

Prints one JSON line: {"seconds": training pass, "wall": with pythae's set-up and saving}.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pythae.data.datasets import BaseDataset
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_loop import HandVAE  # noqa: E402 - the same networks as the hand-written baseline


class Encoder(BaseEncoder):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mu, logvar = self.net(x.flatten(1)).chunk(2, dim=-1)
        return ModelOutput(embedding=mu, log_covariance=logvar)


class Decoder(BaseDecoder):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(-1, 1, 28, 28))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help=".npy of training images [N, 1, 28, 28] in {0, 1}")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    images = torch.from_numpy(np.load(args.data))
    train_x = BaseDataset(images, torch.zeros(len(images)))
    nets = HandVAE()
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"),
                encoder=Encoder(nets.encoder), decoder=Decoder(nets.decoder))
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(output_dir=out, num_epochs=1, learning_rate=1e-3,
                                   per_device_train_batch_size=args.batch_size, steps_saving=None, no_cuda=True)
        start = time.perf_counter()
        trainer = BaseTrainer(model=model, train_dataset=train_x, training_config=config)
        trainer.prepare_training()  # what pythae's train() does before its epochs
        begin = time.perf_counter()
        trainer.train_step(epoch=1)
        seconds = time.perf_counter() - begin
        wall = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "wall": wall}))


if __name__ == "__main__":
    main()
