import torch

from glyphgate.core.model.net import EnergyCNN
from glyphgate.core.model.sampler import InformativeInit, SGLDSampler
from training.replay import ReplayBuffer


def _net():
    torch.manual_seed(0)
    return EnergyCNN(4, 8)


def _briefly_trained():
    """A few contrastive steps: four striped patterns have low energy, uniform noise high."""
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    data = torch.ones(4, 1, 56, 56)
    for c in range(4):
        data[c, 0, :, 10 * c : 10 * c + 6] = -1
    for _ in range(40):
        noise = torch.rand(16, 1, 56, 56) * 2 - 1
        real = data.repeat(4, 1, 1, 1)
        loss = net(noise).mean() - net(real).mean() + 0.1 * (net(noise) ** 2 + net(real) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def test_sgld_lowers_the_energy_of_its_samples():
    net = _briefly_trained()
    sampler = SGLDSampler(net, 4, steps=40, step_size=1.0, noise=0.005, grad_clamp=None)
    x0 = sampler.fresh(64, None, "cpu")
    x, chain = sampler.run(x0, keep_chain=True)
    with torch.no_grad():
        before, after = net.energy(x0).mean(), net.energy(x).mean()
    assert after < before - 0.1
    assert len(chain) == 41 and torch.equal(chain[-1], x)
    # The first step is x0 + step_size * df/dx + N(0, noise^2) wherever the clamp to [-1, 1] left it alone.
    x_in = x0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x_in).sum(), x_in)
    inside = chain[1].abs() < 1
    residual = (chain[1] - x0 - 1.0 * grad)[inside]
    assert inside.float().mean() > 0.9 and residual.mean().abs() < 1e-4
    assert abs(residual.std().item() - 0.005) < 1e-4


def test_conditional_sampling_raises_the_label_logit():
    net = _net()
    sampler = SGLDSampler(net, 4, steps=30, noise=0.0, grad_clamp=None)
    y = torch.full((16,), 2)
    x0 = sampler.fresh(16, y, "cpu")
    x, _ = sampler.run(x0, y)
    with torch.no_grad():
        assert net(x, y).mean() > net(x0, y).mean()


def test_sampling_leaves_parameters_and_mode_alone():
    net = _net()
    net.train()
    SGLDSampler(net, 4, steps=3).sample(8)
    assert net.training
    assert all(p.grad is None and p.requires_grad for p in net.parameters())
    net.eval()
    SGLDSampler(net, 4, steps=3).sample(8)
    assert not net.training


def test_buffer_keeps_its_capacity_and_the_reinit_fraction_holds():
    net = _net()
    buf = ReplayBuffer(capacity=100)
    sampler = SGLDSampler(net, 4, buffer=buf, steps=0, reinit=0.05)
    restarted = []
    for _ in range(300):
        x, _, mask = sampler.sample(64)
        assert buf.chains.shape == (1, 100, 1, 56, 56) and len(buf) == 100
        restarted.append(mask)
    frac = torch.cat(restarted).float().mean().item()
    n = 300 * 64
    assert abs(frac - 0.05) < 4 * (0.05 * 0.95 / n) ** 0.5


def test_buffer_chains_persist():
    net = _net()
    buf = ReplayBuffer(capacity=8)
    before = buf.chains.clone()
    SGLDSampler(net, 4, buffer=buf, steps=2, reinit=0.0).sample(32)
    assert not torch.equal(before, buf.chains)


def test_sampling_moves_exactly_the_chains_it_drew_and_keeps_them():
    """Persistent CD: each drawn chain is moved a little by SGLD and stored back in its own slot;
    every other chain is untouched. With no steps, the draw-and-store round trip is the identity."""
    net = _net()
    buf = ReplayBuffer(capacity=64)
    before = buf.chains.clone()
    SGLDSampler(net, 4, buffer=buf, steps=0, reinit=0.0).sample(8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(buf.chains, before)
    SGLDSampler(net, 4, buffer=buf, steps=2, reinit=0.0).sample(8, generator=torch.Generator().manual_seed(1))
    changed = (buf.chains != before).flatten(2).any(2)[0]
    assert 1 <= int(changed.sum()) <= 8
    # two steps of at most 1.0 * 0.03 plus noise: a slot's new state is its own old one, moved a little
    assert (buf.chains[0, changed] - before[0, changed]).abs().max() < 0.2
    assert torch.equal(buf.chains[0, ~changed], before[0, ~changed])


def test_informative_init_resembles_its_class():
    torch.manual_seed(0)
    a = torch.full((50, 1, 56, 56), -0.8) + 0.05 * torch.randn(50, 1, 56, 56)
    b = torch.full((50, 1, 56, 56), 0.7) + 0.05 * torch.randn(50, 1, 56, 56)
    init = InformativeInit(2, rank=4).fit(torch.cat([a, b]), torch.tensor([0] * 50 + [1] * 50))
    s = init.sample(torch.tensor([0] * 20 + [1] * 20))
    assert s.shape == (40, 1, 56, 56)
    assert abs(s[:20].mean() + 0.8) < 0.05 and abs(s[20:].mean() - 0.7) < 0.05
