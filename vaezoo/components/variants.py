"""Built-in variants: named recipes of parts, with the defaults of the papers they come from."""
from __future__ import annotations

from vaezoo.hookspecs import Register, hookimpl
from vaezoo.spec import VariantSpec

MLP = {"encoder": "mlp", "decoder": "mlp"}
CONV = {"encoder": "conv", "decoder": "conv"}

#: name -> (recipe, description, tags). "density" marks likelihood models trained on a bound of log p(x).
VARIANTS: dict[str, tuple[VariantSpec, str, tuple[str, ...]]] = {
    "vae-mlp": (
        VariantSpec(**MLP, latent_dim=20),
        "VAE with 400-400 MLP encoder and decoder, Bernoulli pixels (Kingma & Welling, 2014)",
        ("density",),
    ),
    "vae-conv": (
        VariantSpec(**CONV, latent_dim=16),
        "VAE with a stride-2 convolutional encoder and decoder, Bernoulli pixels",
        ("density",),
    ),
    "vae-resnet": (
        VariantSpec(encoder="resnet", decoder="resnet", latent_dim=16),
        "VAE with residual-block encoder and decoder (two stages of two blocks), Bernoulli pixels",
        ("density",),
    ),
    "beta-vae-mlp": (
        VariantSpec(**MLP, latent_dim=10, options={"objective": {"beta": 4.0}}),
        "beta-VAE, beta = 4, with MLP encoder and decoder (Higgins et al., 2017)",
        ("disentanglement",),
    ),
    "beta-vae-conv": (
        VariantSpec(**CONV, latent_dim=10, options={"objective": {"beta": 4.0}}),
        "beta-VAE, beta = 4, with convolutional encoder and decoder (Higgins et al., 2017)",
        ("disentanglement",),
    ),
    "beta-tcvae-conv": (
        VariantSpec(**CONV, objective="tc", latent_dim=10, options={"objective": {"beta": 6.0}}),
        "beta-TCVAE: total correlation weighted 6, minibatch-weighted sampling (Chen et al., 2018)",
        ("disentanglement",),
    ),
    "info-vae-mlp": (
        VariantSpec(
            **MLP, objective="mmd", latent_dim=20,
            options={"objective": {"kl_weight": 1.0, "mmd_weight": 100.0, "kernel": "rbf"}},
        ),
        "InfoVAE: ELBO plus an RBF-kernel MMD between q(z) and p(z), weight 100 (Zhao et al., 2019)",
        ("mmd",),
    ),
    "wae-mmd-conv": (
        VariantSpec(
            **CONV, objective="mmd", latent_dim=16,
            options={"objective": {"kl_weight": 0.0, "mmd_weight": 100.0, "kernel": "imq"}},
        ),
        "Wasserstein autoencoder: reconstruction plus an IMQ-kernel MMD, weight 100 (Tolstikhin et al., 2018)",
        ("mmd",),
    ),
    "iwae-mlp": (
        VariantSpec(**MLP, objective="iwae", latent_dim=20, options={"objective": {"samples": 5}}),
        "Importance-weighted autoencoder, K = 5, vae-mlp's networks (Burda et al., 2016)",
        ("density",),
    ),
    "vamp-vae-mlp": (
        VariantSpec(**MLP, prior="vamp", latent_dim=20, options={"prior": {"components": 500}}),
        "VAE with a VampPrior of 500 learned pseudo-inputs, vae-mlp's networks (Tomczak & Welling, 2018)",
        ("density",),
    ),
    "mog-vae-mlp": (
        VariantSpec(**MLP, prior="mog", latent_dim=20, options={"prior": {"components": 10}}),
        "VAE with a learned mixture of 10 diagonal Gaussians as prior, vae-mlp's networks",
        ("density",),
    ),
    "hvae-mlp": (
        VariantSpec(
            **MLP, prior="ladder", posterior="ladder", latent_dim=40,
            options={"prior": {"layers": 2, "hidden": 256}, "objective": {"warmup_steps": 5000}},
        ),
        "Hierarchical VAE: two stochastic layers of 20, top-down inference, KL warm-up (Sønderby et al., 2016)",
        ("density", "hierarchical"),
    ),
    "cvae-mlp": (
        VariantSpec(**MLP, latent_dim=20, num_classes=10),
        "Conditional VAE: a one-hot label joins the MLP encoder's input and z (Sohn et al., 2015)",
        ("conditional",),
    ),
    "cvae-conv": (
        VariantSpec(**CONV, latent_dim=16, num_classes=10),
        "Conditional VAE: a one-hot label joins the conv features and z (Sohn et al., 2015)",
        ("conditional",),
    ),
    "factor-vae-conv": (
        VariantSpec(**CONV, objective="factor", latent_dim=10, options={"objective": {"gamma": 6.0}}),
        "FactorVAE: ELBO plus 6 x total correlation, by a discriminator and the density-ratio trick "
        "(Kim & Mnih, 2018)",
        ("disentanglement", "adversarial"),
    ),
    "aae-conv": (
        VariantSpec(**CONV, objective="aae", latent_dim=16),
        "Adversarial autoencoder: a discriminator matches the aggregate posterior to N(0, I) "
        "(Makhzani et al., 2016)",
        ("adversarial",),
    ),
    "vae-gan-conv": (
        VariantSpec(**CONV, objective="vae-gan", latent_dim=16),
        "VAE-GAN: the decoder is also a GAN generator, reconstruction also in the discriminator's features "
        "(Larsen et al., 2016)",
        ("adversarial",),
    ),
    "gaussian-vae-conv": (
        VariantSpec(**CONV, likelihood="gaussian", latent_dim=16, options={"likelihood": {"learn_sigma": True}}),
        "VAE for continuous pixels: Gaussian likelihood with a sigma learned per pixel",
        (),
    ),
}


@hookimpl
def vaezoo_register_variants(register: Register) -> None:
    for name, (recipe, description, tags) in VARIANTS.items():
        register(name, recipe, description=description, tags=tags)
