"""DIP-VAE and the MIWAE family against independent computations: the bounds against numpy on the same log
weights, their ordering (per draw by Jensen, and in expectation), PIWAE's split of the gradients between the
generative and the inference network, the DIP penalties against numpy covariances."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

import vaezoo
from vaezoo.core.estimators import elbo_terms

SHAPE = (1, 8, 8)
SMALL = {"encoder.hidden_dims": [16], "decoder.hidden_dims": [16]}


def model(objective: str, **options) -> vaezoo.VAE:
    torch.manual_seed(0)
    return vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=3, objective=objective, **SMALL,
                               **{f"objective.{k}": v for k, v in options.items()}).double()


def data(n: int = 5) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(n, *SHAPE).bernoulli().double()


def test_bounds_match_numpy_on_the_same_log_weights():
    m, x = model("miwae", samples=3, groups=4), data()
    torch.manual_seed(2)
    out = m(x)
    log_w = out.terms["log_w"].detach().numpy()  # [M K, B], group-major
    groups = log_w.reshape(4, 3, -1)
    expected = (logsumexp(groups, axis=1) - np.log(3)).mean(0)
    np.testing.assert_allclose(out.terms["miwae_bound"].detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(out.terms["iw_bound"].detach().numpy(), logsumexp(log_w, axis=0) - np.log(12), rtol=1e-12)
    c = model("ciwae", samples=6, beta=0.3)
    torch.manual_seed(2)
    out = c(x)
    log_w = out.terms["log_w"].detach().numpy()
    expected = 0.3 * log_w.mean(0) + 0.7 * (logsumexp(log_w, axis=0) - np.log(6))
    np.testing.assert_allclose(out.terms["ciwae_bound"].detach().numpy(), expected, rtol=1e-12)


def test_special_cases_are_iwae_and_the_elbo():
    x = data()
    for objective, options in (("miwae", {"samples": 4, "groups": 1}), ("ciwae", {"samples": 4, "beta": 0.0}),
                               ("iwae", {"samples": 4})):
        torch.manual_seed(3)
        loss = model(objective, **options)(x).loss
        if objective == "miwae":
            reference = loss
        torch.testing.assert_close(loss, reference)
    torch.manual_seed(3)
    out = model("ciwae", samples=4, beta=1.0)(x)
    torch.testing.assert_close(out.loss, -out.terms["log_w"].mean())


def test_ordering_per_draw_and_in_expectation():
    m, x = model("miwae", samples=4, groups=4), data(8)
    elbo, miwae, iwae_k, iwae_mk, ciwae = [], [], [], [], []
    with torch.no_grad():
        for seed in range(200):
            torch.manual_seed(seed)
            out = m(x)
            log_w = out.terms["log_w"]
            e = log_w.mean(0)
            assert (e <= out.terms["miwae_bound"] + 1e-12).all() and (out.terms["miwae_bound"] <= out.terms["iw_bound"] + 1e-12).all()
            cw = 0.5 * log_w[:4].mean(0) + 0.5 * (torch.logsumexp(log_w[:4], 0) - np.log(4))
            assert (log_w[:4].mean(0) <= cw + 1e-12).all() and (cw <= torch.logsumexp(log_w[:4], 0) - np.log(4) + 1e-12).all()
            elbo.append(e.mean()), miwae.append(out.terms["miwae_bound"].mean()), iwae_mk.append(out.terms["iw_bound"].mean())
            iwae_k.append((torch.logsumexp(log_w[:4], 0) - np.log(4)).mean()), ciwae.append(cw.mean())
    means = {k: torch.stack(v).mean().item() for k, v in
             {"elbo": elbo, "ciwae": ciwae, "miwae": miwae, "iwae_k": iwae_k, "iwae_mk": iwae_mk}.items()}
    se = torch.stack(iwae_k).std().item() / np.sqrt(200)
    assert means["elbo"] < means["ciwae"] < means["iwae_k"] < means["iwae_mk"]
    assert means["elbo"] < means["miwae"] < means["iwae_mk"]
    assert abs(means["miwae"] - means["iwae_k"]) < 4 * se + 1e-3  # E MIWAE(M, K) = E IWAE(K)


def test_piwae_gives_the_decoder_iwae_gradients_and_the_encoder_miwae_gradients():
    x = data()
    grads = {}
    for name, objective, options in (("piwae", "piwae", {"samples": 3, "groups": 2}),
                                     ("miwae", "miwae", {"samples": 3, "groups": 2}),
                                     ("iwae", "iwae", {"samples": 6})):
        m = model(objective, **options)
        torch.manual_seed(4)
        out = m(x)
        out.loss.backward()
        grads[name] = {n: p.grad.clone() for n, p in m.named_parameters()}
        if name == "piwae":
            piwae_loss = out.loss.detach()
        if name == "iwae":
            torch.testing.assert_close(piwae_loss, out.loss.detach())
    for n, g in grads["piwae"].items():
        target = grads["miwae"] if n.startswith("encoder.") else grads["iwae"]
        assert n.startswith(("encoder.", "decoder."))
        torch.testing.assert_close(g, target[n])
    assert any(not torch.allclose(grads["miwae"][n], grads["iwae"][n]) for n in grads["piwae"] if n.startswith("encoder."))


@pytest.mark.parametrize("kind", ["i", "ii"])
def test_dip_penalty_against_numpy(kind):
    m, x = model("dip", kind=kind, lambda_od=3.0, lambda_d=7.0), data(9)
    torch.manual_seed(5)
    out = m(x)
    torch.manual_seed(5)
    reference = elbo_terms(m, x)
    mu, logvar = (t.detach().numpy() for t in out.q_params)
    cov = np.cov(mu, rowvar=False, bias=True)
    if kind == "ii":
        cov = cov + np.diag(np.exp(logvar).mean(0))
    off = sum(cov[i, j] ** 2 for i in range(3) for j in range(3) if i != j)
    expected = 3.0 * off + 7.0 * sum((cov[i, i] - 1) ** 2 for i in range(3))
    assert out.terms["dip"].item() == pytest.approx(expected, rel=1e-10)
    assert out.loss.item() == pytest.approx(reference.loss.item() + expected, rel=1e-10)


def test_dip_defaults_follow_the_paper():
    assert (model("dip").objective.lambda_od, model("dip").objective.lambda_d) == (10.0, 100.0)
    assert model("dip", kind="ii").objective.lambda_d == 10.0
    with pytest.raises(ValueError, match="kind must be one of"):
        model("dip", kind="iii")
