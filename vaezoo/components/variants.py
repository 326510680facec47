"""Built-in variants: named recipes of parts, with the defaults of the papers they come from."""
from __future__ import annotations

from vaezoo.registry.hookspecs import Register, hookimpl
from vaezoo.registry.spec import VariantSpec

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
    "svae-mlp": (
        VariantSpec(**MLP, posterior="vmf", prior="uniform-sphere", latent_dim=10),
        "Hyperspherical VAE: von Mises-Fisher posterior on S^9, uniform prior, vae-mlp's networks "
        "(Davidson et al., 2018)",
        ("density", "hyperspherical"),
    ),
    "gumbel-vae-mlp": (
        VariantSpec(
            **MLP, posterior="gumbel-softmax", prior="categorical", latent_dim=200,
            options={"posterior": {"categories": 10, "temperature": 1.0, "min_temperature": 0.5,
                                   "anneal_rate": 3e-5}, "prior": {"categories": 10}},
        ),
        "Categorical VAE: 20 ten-way Gumbel-softmax latents, temperature annealed from 1 to 0.5 "
        "(Jang et al., 2017; Maddison et al., 2017)",
        ("discrete",),
    ),
    "joint-vae-conv": (
        VariantSpec(
            **CONV, posterior="joint", prior="joint", latent_dim=20,
            options={"posterior": {"continuous": 10, "categories": 10}, "prior": {"continuous": 10, "categories": 10}},
        ),
        "JointVAE: 10 Gaussian latents and one ten-way Gumbel-softmax latent, on the ELBO (Dupont, 2018)",
        ("discrete", "disentanglement"),
    ),
    "vq-vae-conv": (
        VariantSpec(
            **CONV, posterior="vq", prior="codebook", latent_dim=32,
            options={"posterior": {"commitment": 0.25},
                     "prior": {"codes": 128, "code_dim": 4, "update": "ema", "decay": 0.99, "pi": "refit"}},
        ),
        "VQ-VAE: 8 codes of 4 dimensions from a 128-code codebook learned by moving averages, commitment 0.25, "
        "straight-through; a categorical prior over codes refitted to the training set's codes after each epoch "
        "(van den Oord et al., 2017)",
        ("discrete",),
    ),
    "vq-vae-mlp": (
        VariantSpec(
            **MLP, posterior="vq", prior="codebook", latent_dim=32,
            options={"posterior": {"commitment": 0.25}, "prior": {"codes": 128, "code_dim": 4, "update": "loss"}},
        ),
        "VQ-VAE with the codebook learned by its loss |sg(z_e) - e|^2, commitment 0.25, MLP networks; the "
        "prior over codes refitted after each epoch (van den Oord et al., 2017)",
        ("discrete",),
    ),
    "iaf-vae-mlp": (
        VariantSpec(
            **MLP, posterior="iaf", latent_dim=20,
            options={"posterior": {"steps": 2, "hidden_dims": [320, 320], "context": 32}},
        ),
        "VAE with two inverse autoregressive flow steps (MADE) on the Gaussian posterior, vae-mlp's networks "
        "(Kingma et al., 2016)",
        ("density", "flow"),
    ),
    "dip-vae-conv": (
        VariantSpec(**CONV, objective="dip", latent_dim=10, options={"objective": {"kind": "i", "lambda_od": 10.0}}),
        "DIP-VAE-I: ELBO plus lambda_od = 10, lambda_d = 100 penalties on Cov[E[z|x]] (Kumar et al., 2018)",
        ("disentanglement",),
    ),
    "dip-vae-ii-conv": (
        VariantSpec(**CONV, objective="dip", latent_dim=10, options={"objective": {"kind": "ii", "lambda_od": 10.0}}),
        "DIP-VAE-II: ELBO plus lambda_od = lambda_d = 10 penalties on the covariance of q(z) (Kumar et al., 2018)",
        ("disentanglement",),
    ),
    "miwae-mlp": (
        VariantSpec(**MLP, objective="miwae", latent_dim=20, options={"objective": {"samples": 4, "groups": 4}}),
        "MIWAE(M=4, K=4): the mean of 4 importance-weighted bounds of 4 draws, vae-mlp's networks "
        "(Rainforth et al., 2018)",
        ("density",),
    ),
    "piwae-mlp": (
        VariantSpec(**MLP, objective="piwae", latent_dim=20, options={"objective": {"samples": 4, "groups": 4}}),
        "PIWAE: the decoder on IWAE(16), the encoder on MIWAE(4, 4) of the same draws (Rainforth et al., 2018)",
        ("density",),
    ),
    "ciwae-mlp": (
        VariantSpec(**MLP, objective="ciwae", latent_dim=20, options={"objective": {"samples": 16, "beta": 0.5}}),
        "CIWAE: 0.5 ELBO + 0.5 IWAE(16) of the same draws (Rainforth et al., 2018)",
        ("density",),
    ),
    # samplers branch (issue 24): deterministic autoencoders, sampled through a sampler fitted to their codes
    "ae-mlp": (
        VariantSpec(**MLP, posterior="deterministic", latent_dim=20),
        "Plain autoencoder: deterministic codes, trained on reconstruction alone; sample it through a fitted "
        "sampler (vaezoo fit-sampler RUN --sampler gmm)",
        ("autoencoder",),
    ),
    "ae-conv": (
        VariantSpec(**CONV, posterior="deterministic", latent_dim=16),
        "Plain convolutional autoencoder: deterministic codes, trained on reconstruction alone; sample it through "
        "a fitted sampler (vaezoo fit-sampler RUN --sampler gmm)",
        ("autoencoder",),
    ),
    "rae-conv": (
        VariantSpec(**CONV, posterior="deterministic", objective="rae", latent_dim=16,
                    options={"objective": {"latent_weight": 1.0, "decoder_weight": 1e-3, "regularizer": "l2"}}),
        "RAE-L2: deterministic conv autoencoder, |z|^2 / 2 and 1e-3 x the decoder's squared weights; sampled "
        "through a fitted gmm (Ghosh et al., 2020)",
        ("autoencoder",),
    ),
    "rae-gp-conv": (
        VariantSpec(**CONV, posterior="deterministic", objective="rae", latent_dim=16,
                    options={"objective": {"latent_weight": 1.0, "decoder_weight": 1e-3, "regularizer": "gp"}}),
        "RAE-GP: deterministic conv autoencoder, |z|^2 / 2 and 1e-3 x the decoder's squared Jacobian norm; "
        "sampled through a fitted gmm (Ghosh et al., 2020)",
        ("autoencoder",),
    ),
    # famB branch (issue 24): normalizing-flow posteriors with amortized parameters
    "planar-vae-mlp": (
        VariantSpec(**MLP, posterior="planar", latent_dim=20, options={"posterior": {"layers": 10}}),
        "VAE with ten planar flow layers on the Gaussian posterior, their parameters amortized by the encoder, "
        "vae-mlp's networks (Rezende & Mohamed, 2015)",
        ("density", "flow"),
    ),
    "radial-vae-mlp": (
        VariantSpec(**MLP, posterior="radial", latent_dim=20, options={"posterior": {"layers": 10}}),
        "VAE with ten radial flow layers on the Gaussian posterior, their parameters amortized by the encoder, "
        "vae-mlp's networks (Rezende & Mohamed, 2015)",
        ("density", "flow"),
    ),
    "hamiltonian-vae-mlp": (
        VariantSpec(**MLP, objective="hamiltonian", latent_dim=20, options={"objective": {"steps": 5}}),
        "Hamiltonian VAE: five tempered leapfrog steps on log p(x, z) from the Gaussian posterior's draw, step "
        "sizes and the initial temperature learned, vae-mlp's networks (Caterini et al., 2018)",
        ("density",),
    ),
    "pvae-mlp": (
        VariantSpec(**MLP, posterior="wrapped-normal", prior="poincare", latent_dim=10),
        "Poincaré VAE: a wrapped normal posterior and prior on the Poincaré ball of curvature -1, the decoder reading "
        "codes through the log map at the origin, vae-mlp's networks (Mathieu et al., 2019)",
        ("density", "hyperbolic"),
    ),
    # famA branch (issue 24): controlled capacity, sliced Wasserstein
    "beta-vae-capacity-conv": (
        VariantSpec(**CONV, objective="capacity", latent_dim=10,
                    options={"objective": {"gamma": 1000.0, "capacity": 25.0, "capacity_steps": 100_000}}),
        "beta-VAE with controlled capacity: reconstruction + 1000 |KL - C|, C raised linearly from 0 to 25 nats "
        "over 100,000 steps, convolutional networks (Burgess et al., 2018)",
        ("disentanglement",),
    ),
    "joint-vae-capacity-conv": (
        VariantSpec(
            **CONV, posterior="joint", prior="joint", objective="capacity", latent_dim=20,
            options={"posterior": {"continuous": 10, "categories": 10}, "prior": {"continuous": 10, "categories": 10},
                     "objective": {"gamma": 30.0, "capacity": 5.0, "discrete_capacity": 5.0,
                                   "capacity_steps": 25_000}},
        ),
        "JointVAE with its capacity schedule: 10 Gaussian latents and one ten-way Gumbel-softmax latent, "
        "30 |KL_c - C_c| + 30 |KL_d - C_d|, both raised to 5 nats over 25,000 steps, C_d capped at log 10 "
        "(Dupont, 2018)",
        ("discrete", "disentanglement"),
    ),
    "swae-conv": (
        VariantSpec(**CONV, posterior="deterministic", objective="swae", latent_dim=16,
                    options={"objective": {"weight": 10.0, "projections": 50}}),
        "Sliced-Wasserstein autoencoder: deterministic conv autoencoder, reconstruction + 10 x the sliced "
        "Wasserstein distance (50 random projections) between the codes and N(0, I) draws (Kolouri et al., 2019)",
        ("autoencoder",),
    ),
    "vae-msssim-conv": (
        VariantSpec(**CONV, likelihood="ms-ssim", latent_dim=16, options={"likelihood": {"alpha": 0.84}}),
        "VAE trained on a structural reconstruction term, 0.84 (1 - MS-SSIM) + 0.16 L1 per pixel, in place of a "
        "likelihood (so its ELBO is not a bound on log p(x)), convolutional networks (Zhao et al., 2017)",
        (),
    ),
    "dfc-vae-conv": (
        VariantSpec(**CONV, objective="dfc", latent_dim=16,
                    options={"objective": {"feature_weight": 0.5, "kl_weight": 1.0, "pixel_weight": 0.0}}),
        "Deep feature consistent VAE (VAE-123): reconstruction judged in the three ReLU layers of vaezoo's "
        "FeatureNet trained on the dataset's labels (the domain features of FID) instead of pixels, feature "
        "weight 0.5, KL weight 1; needs labelled data (Hou et al., 2017)",
        (),
    ),
}

#: The small CPU defaults of the latent-diffusion autoencoders' networks (the papers' run 128-512 channels with
#: 2 blocks per stage; these train on 32x32 and 64x64 images on a CPU in minutes): one block per stage, 8 groups.
LDM_NETWORKS = {"layers_per_block": 1, "norm_num_groups": 8}
#: The ldm objective as the papers set it (perceptual weight 1, KL weight 1e-6, discriminator weight 0.5 with
#: the adaptive weight), with a smaller discriminator that starts after 500 steps instead of 50,001.
LDM_OBJECTIVE = {"perceptual_weight": 1.0, "kl_weight": 1e-6, "adversarial_weight": 0.5, "discriminator_start": 500,
                 "discriminator_channels": 32}


def ldm_variant(channels: tuple[int, ...], latent_channels: int, **parts: object) -> VariantSpec:
    """An ldm encoder and decoder of `channels` per stage with spatial latents of `latent_channels`, Gaussian
    pixels (sigma 0.1, for the held-out ELBO) and the ldm objective; `parts` replace the posterior and prior."""
    networks = {**LDM_NETWORKS, "block_out_channels": list(channels), "latent_channels": latent_channels}
    options: dict = {"encoder": networks, "decoder": dict(networks), "objective": dict(LDM_OBJECTIVE),
                     **parts.pop("options", {})}  # type: ignore[dict-item]
    return VariantSpec(encoder="ldm", decoder="ldm", likelihood="gaussian", objective="ldm",
                       input_shape=(3, 64, 64), options=options, **parts)  # type: ignore[arg-type]


VARIANTS.update({
    "kl-f4": (
        ldm_variant((16, 32, 64), 3),
        "Latent-diffusion KL autoencoder, downsampling 4, 3 latent channels: ldm networks (small by default: "
        "16-32-64 channels), Gaussian posterior, L1 + perceptual + adaptive patch-GAN + 1e-6 KL (Rombach et al., "
        "2022)",
        ("ldm", "adversarial"),
    ),
    "kl-f8": (
        ldm_variant((16, 32, 64, 64), 4),
        "Latent-diffusion KL autoencoder, downsampling 8, 4 latent channels (Stable Diffusion's shape): ldm "
        "networks (small by default: 16-32-64-64 channels), Gaussian posterior, L1 + perceptual + adaptive "
        "patch-GAN + 1e-6 KL (Rombach et al., 2022)",
        ("ldm", "adversarial"),
    ),
    "vq-f8": (
        ldm_variant((16, 32, 64, 64), 4, posterior="vq", prior="codebook", options={
            "posterior": {"commitment": 0.25}, "prior": {"codes": 256, "code_dim": 4, "update": "loss"}}),
        "VQGAN-style autoencoder, downsampling 8: ldm networks (small by default: 16-32-64-64 channels), one of "
        "256 4-dimensional codes per latent position learned by the codebook loss, commitment 0.25, L1 + "
        "perceptual + adaptive patch-GAN (Esser et al., 2021; Rombach et al., 2022)",
        ("ldm", "adversarial", "discrete"),
    ),
})


@hookimpl
def vaezoo_register_variants(register: Register) -> None:
    for name, (recipe, description, tags) in VARIANTS.items():
        register(name, recipe, description=description, tags=tags)
