"""Random-weight networks on the crossbar: fixed random conductances with a trained topology
(edge-popup) or a trained readout, on scikit-learn's digits; the RESET list of pruned pairs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from backends.crossbar import CrossbarBackend
from backends.crossbar.random_weights import RandomConductanceNetwork
from compiler import compile
from tests.test_quant_accuracy import digits_data


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 16, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@pytest.fixture(scope="module")
def setup():
    xtr, ytr, xte, yte = digits_data()
    torch.manual_seed(0)
    model = SmallCNN().eval()
    graph = compile(model, (xtr[:64],), "dce").graph
    return graph, model, xtr, ytr, xte, yte


def test_mask_training_learns_digits_without_changing_a_conductance(setup):
    graph, model, xtr, ytr, xte, yte = setup
    net = RandomConductanceNetwork(graph, "reram", seed=0, keep=0.5)
    before = [(layer.g_pos.clone(), layer.g_neg.clone()) for layer in net.layers]
    chance = net.accuracy(xte, yte)
    losses = net.train_masks(xtr, ytr, epochs=8, lr=0.2)
    assert losses[-1] < losses[0]
    assert net.accuracy(xte, yte) > max(75.0, chance + 50)   # 84% here; 97% with more width and epochs
    for layer, (g_pos, g_neg) in zip(net.layers, before):
        assert torch.equal(layer.g_pos, g_pos) and torch.equal(layer.g_neg, g_neg)
        assert g_pos.min() >= net.device.g_min and g_pos.max() <= net.device.g_max
    kept = [float(m.mean()) for m in net.masks().values()]
    assert kept == pytest.approx([0.5] * 3, abs=1e-3)


def test_readout_training_on_fixed_random_features(setup):
    graph, model, xtr, ytr, xte, yte = setup
    net = RandomConductanceNetwork(graph, "pcm", seed=1)
    net.train_readout(xtr, ytr)
    assert net.accuracy(xte, yte, masked=False) > 80.0


def test_reset_list_addresses_every_pruned_pair_once(setup):
    graph, model, xtr, ytr, _, _ = setup
    net = RandomConductanceNetwork(graph, "reram", seed=0, keep=0.25)
    resets = net.reset_list(rows=64, cols=64)
    pruned = sum(int((m == 0).sum()) for m in net.masks().values())
    assert len(resets) == pruned
    addresses = {(r["tile"], r["row"], r["col_pos"]) for r in resets}
    assert len(addresses) == pruned
    assert all(r["col_neg"] == r["col_pos"] + 1 and r["row"] < 64 and r["col_neg"] < 64 for r in resets)
    conv = [r for r in resets if r["layer"] == "conv"]
    assert {r["tile"] for r in conv} == {0}            # a 9-row, 32-pair conv fits one 64 x 64 tile


def test_the_masked_network_runs_on_the_crossbar_target(setup):
    graph, model, xtr, ytr, xte, yte = setup
    net = RandomConductanceNetwork(graph, "reram", seed=0)
    net.train_masks(xtr, ytr, epochs=3, lr=0.2)
    target = compile(model, (xte[:64],), "dce").graph   # the same model: its biases stay digital
    net.apply_to(target)
    artifact = CrossbarBackend(device="ideal", adc_bits=0, weight_bits=8).lower(target, None)
    software = net.forward(xte[:64]).argmax(1)
    hardware = artifact.run(xte[:64])[0].argmax(1)
    assert float((software == hardware).float().mean()) > 0.9
