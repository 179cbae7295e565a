import pytest
import torch

from glyphgate.core.model.net import EnergyCNN, OnnxHead


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.rand(5, 1, 56, 56) * 2 - 1


def test_logits_shape_and_width(x):
    net = EnergyCNN(num_classes=42, width=8)
    assert net.get_logits(x).shape == (5, 42)
    assert EnergyCNN(42, 16).head.in_features == 64


def test_unconditional_jem_is_logsumexp_of_logits(x):
    net = EnergyCNN(42, 8)
    logits = net.get_logits(x)
    assert net(x).shape == (5,)
    assert torch.allclose(net(x), torch.logsumexp(logits, 1))
    assert torch.allclose(net.energy(x), -torch.logsumexp(logits, 1))


def test_conditional_jem_picks_the_label_logit(x):
    net = EnergyCNN(42, 8)
    y = torch.tensor([0, 3, 41, 7, 7])
    assert torch.allclose(net(x, y), net.get_logits(x)[torch.arange(5), y])
    # Hand values: a zero head weight and biases log(1..42) make the logits log(k + 1) for every
    # image, so f(x) = log(1 + ... + 42) = log 903 and f(x, y) - f(x) = log q(y|x) = log((y + 1) / 903).
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.arange(1, 43).log())
    assert torch.allclose(net(x), torch.tensor(903.0).log().expand(5))
    assert torch.allclose(net(x, y) - net(x), (torch.tensor([1.0, 4, 42, 8, 8]) / 903).log())


def test_ebm_has_one_output(x):
    net = EnergyCNN(1, 8)
    assert net.get_logits(x).shape == (5, 1)
    assert torch.allclose(net(x), net.get_logits(x)[:, 0])


def test_energy_of_an_image_does_not_depend_on_its_batch(x):
    net = EnergyCNN(42, 8)
    assert torch.allclose(net.energy(x)[:2], net.energy(x[:2]), atol=1e-6)


def test_onnx_head_outputs_logits_and_energy(x):
    net = EnergyCNN(42, 8)
    logits, energy = OnnxHead(net)(x)
    assert torch.allclose(logits, net.get_logits(x)) and torch.allclose(energy, net.energy(x))
