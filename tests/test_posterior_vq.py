"""The VQ posterior and codebook prior against independent computations: nearest codes by brute force, the
straight-through gradient and commitment term, one SGD step of the codebook loss, the EMA update (one step
by hand, and convergence to the mean of the assigned vectors), and the KL of a one-hot posterior."""
from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.components.posteriors.vq import VQPosterior
from vaezoo.components.priors.codebook import CodebookPrior
from vaezoo.data.datasets import load_dataset
from vaezoo.errors import CombinationError


def setup(update: str, pi: str = "uniform", seed: int = 0) -> tuple[VQPosterior, CodebookPrior, torch.Tensor]:
    torch.manual_seed(seed)
    prior = CodebookPrior(6, codes=5, code_dim=2, pi=pi, update=update).double()
    return VQPosterior(6, commitment=0.25).double(), prior, torch.randn(4, 6, dtype=torch.float64)


def brute_force_codes(prior: CodebookPrior, z_e: torch.Tensor) -> torch.Tensor:
    """The index of the nearest code of each block, by a loop over the codes."""
    embedding = prior.embedding.detach()
    blocks = z_e.detach().view(len(z_e), prior.positions, prior.code_dim)
    return torch.tensor([
        [min(range(prior.codes), key=lambda k: float(((v - embedding[k]) ** 2).sum())) for v in row]
        for row in blocks
    ])


def test_draw_is_the_nearest_code_with_the_one_hot_kl():
    post, prior, z_e = setup("loss")
    latent = post.eval().draw((z_e,), prior)
    codes = brute_force_codes(prior, z_e)
    torch.testing.assert_close(latent.z, prior.embedding.detach()[codes].reshape(4, 6))
    torch.testing.assert_close(latent.kl, torch.full((4,), 3 * math.log(5), dtype=torch.float64))
    torch.testing.assert_close(latent.log_q, torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(prior.log_prob(latent.z), -latent.kl)
    many = post.draw((z_e,), prior, samples=3)
    assert many.z.shape == (3, 4, 6) and many.log_q.shape == (3, 4)


def test_kl_against_a_learned_prior_is_minus_the_log_probability_of_the_codes():
    post, prior, z_e = setup("loss", pi="learned")
    with torch.no_grad():
        prior.logits.copy_(torch.randn(3, 5))
    latent = post.draw((z_e,), prior)
    codes = brute_force_codes(prior, z_e)
    log_pi = torch.log_softmax(prior.logits.detach(), -1)
    expected = -torch.stack([log_pi[n, codes[:, n]] for n in range(3)], dim=-1).sum(-1)
    torch.testing.assert_close(latent.kl.detach(), expected)
    latent.kl.sum().backward()  # the KL fits the prior over codes: its gradient is softmax - onehot counts
    counts = torch.zeros(3, 5, dtype=torch.float64)
    for n in range(3):
        counts[n].index_add_(0, codes[:, n], torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(prior.logits.grad, 4 * torch.softmax(prior.logits.detach(), -1) - counts)


def test_straight_through_gradient_and_commitment_term():
    post, prior, z_e = setup("loss")
    z_e.requires_grad_(True)
    latent = post.train().draw((z_e,), prior)
    g = torch.randn(4, 6, dtype=torch.float64)
    e = prior.embedding.detach()[brute_force_codes(prior, z_e.detach())].reshape(4, 6)
    commitment = 0.25 * ((z_e.detach() - e) ** 2).sum(-1)
    codebook = ((z_e.detach() - e) ** 2).sum(-1)
    torch.testing.assert_close(latent.aux.detach(), commitment + codebook)
    ((latent.z * g).sum() + latent.aux.sum()).backward()
    # the decoder's gradient passes straight through; the commitment term pulls z_e to its code
    torch.testing.assert_close(z_e.grad, g + 0.25 * 2 * (z_e.detach() - e))


def test_one_sgd_step_of_the_codebook_loss_moves_each_code_towards_its_vectors():
    post, prior, z_e = setup("loss")
    before = prior.embedding.detach().clone()
    codes = brute_force_codes(prior, z_e)
    optimizer = torch.optim.SGD(prior.parameters(), lr=0.1)
    post.train().draw((z_e,), prior).aux.sum().backward()
    optimizer.step()
    expected = before.clone()
    blocks = z_e.view(4, 3, 2)
    for k in range(5):
        assigned = blocks[codes == k]
        expected[k] -= 0.1 * 2 * (len(assigned) * before[k] - assigned.sum(0))
    torch.testing.assert_close(prior.embedding.detach(), expected)


def test_one_ema_step_by_hand():
    post, prior, z_e = setup("ema")
    e0 = prior.embedding.clone()
    codes = brute_force_codes(prior, z_e)
    post.train().draw((z_e,), prior)
    blocks = z_e.view(4, 3, 2)
    gamma, eps = 0.99, 1e-5
    size = torch.tensor([gamma + (1 - gamma) * float((codes == k).sum()) for k in range(5)], dtype=torch.float64)
    sums = torch.stack([gamma * e0[k] + (1 - gamma) * blocks[codes == k].sum(0) for k in range(5)])
    smoothed = (size + eps) / (size.sum() + 5 * eps) * size.sum()
    torch.testing.assert_close(prior.cluster_size, size)
    torch.testing.assert_close(prior.embedding, sums / smoothed.unsqueeze(-1))
    post.eval().draw((z_e,), prior)  # no updates outside training
    torch.testing.assert_close(prior.embedding, sums / smoothed.unsqueeze(-1))


def test_ema_codes_converge_to_the_mean_of_their_vectors():
    torch.manual_seed(1)
    prior = CodebookPrior(2, codes=2, code_dim=2, update="ema", decay=0.9).double()
    with torch.no_grad():
        prior.embedding.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        prior.embed_sum.copy_(prior.embedding)
    post = VQPosterior(2).double().train()
    cluster = torch.tensor([[-2.0, 1.0]]) + 0.1 * torch.randn(30, 2)
    other = torch.tensor([[3.0, -1.0]]) + 0.1 * torch.randn(10, 2)
    z_e = torch.cat([cluster, other]).double()
    for _ in range(300):
        post.draw((z_e,), prior)
    torch.testing.assert_close(prior.embedding, torch.stack([cluster.mean(0), other.mean(0)]).double(), atol=1e-4, rtol=0)


def test_learned_prior_samples_codes_in_its_proportions():
    torch.manual_seed(2)
    prior = CodebookPrior(2, codes=3, code_dim=2, pi="learned")
    with torch.no_grad():
        prior.logits.copy_(torch.log(torch.tensor([[0.6, 0.3, 0.1]])))
    z = prior.sample(20000)
    freq = torch.stack([(z == prior.embedding[k]).all(-1).float().mean() for k in range(3)])
    torch.testing.assert_close(freq, torch.tensor([0.6, 0.3, 0.1]), atol=0.015, rtol=0)


def test_vq_needs_the_codebook_prior_and_bad_options_are_errors():
    with pytest.raises(CombinationError, match="posterior 'vaezoo:vq' cannot be used with prior 'vaezoo:standard-normal'"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=4, posterior="vq")
    with pytest.raises(ValueError, match="multiple of code_dim"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=5, posterior="vq", prior="codebook")
    with pytest.raises(ValueError, match="update must be one of"):
        CodebookPrior(4, update="kmeans")
    with pytest.raises(ValueError, match="pi must be one of refit, learned, uniform, got 'fitted'"):
        CodebookPrior(4, pi="fitted")


def test_refit_sets_pi_to_the_smoothed_counts_of_the_codes():
    prior = CodebookPrior(4, codes=3, code_dim=2).double()
    codes = torch.tensor([[0, 2], [0, 2], [1, 2], [0, 0]])
    stats = prior.code_statistics(prior.lookup(codes)[:2]) + prior.code_statistics(prior.lookup(codes)[2:])
    torch.testing.assert_close(stats, torch.tensor([[3.0, 1.0, 0.0], [1.0, 0.0, 3.0]], dtype=torch.float64))
    prior.refit(stats)
    expected = (stats + 1) / (4 + 3)  # add-one smoothing: an unused code keeps some mass
    torch.testing.assert_close(prior.log_probs().exp(), expected)
    assert "logits" in prior.state_dict()  # a refitted pi is saved with the weights; a uniform one is not
    assert "logits" not in CodebookPrior(4, codes=3, code_dim=2, pi="uniform").state_dict()


def test_training_refits_the_prior_to_the_codes_of_the_training_set(tmp_path):
    digits = load_dataset("digits")
    torch.manual_seed(0)
    model = vaezoo.create_model("vq-vae-mlp", input_shape=(1, 8, 8))
    assert model.prior.refits and torch.count_nonzero(model.prior.logits) == 0
    vaezoo.fit(model, digits.train_x, epochs=1, batch_size=64, binarize="none", out=tmp_path / "run")
    model.eval()
    with torch.no_grad():
        codes = model.prior.nearest(model.posterior_mean(digits.train_x).unflatten(-1, (8, 4)))
    counts = torch.stack([torch.bincount(codes[:, n], minlength=128) for n in range(8)]).float()
    expected = (counts + 1) / (len(codes) + 128)
    torch.testing.assert_close(model.prior.log_probs().exp(), expected)
    loaded = vaezoo.load_model(tmp_path / "run")
    torch.testing.assert_close(loaded.prior.log_probs().exp(), expected)
    torch.manual_seed(1)
    drawn = loaded.prior.nearest(loaded.prior.sample(20000).unflatten(-1, (8, 4)))[:, 0]
    frequencies = torch.bincount(drawn, minlength=128).float() / 20000
    torch.testing.assert_close(frequencies, expected[0], atol=0.015, rtol=0)
