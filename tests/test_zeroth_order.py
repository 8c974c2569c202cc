import torch

from auditor.models.model import from_module
from auditor.models.zeroth_order import ZerothOrderClassifier


def test_zeroth_order_gradient_matches_autograd(tiny_net):
    torch.manual_seed(0)
    model = from_module(tiny_net, num_classes=3, input_shape=(1, 16, 16))
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    upstream = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))

    exact = x.clone().requires_grad_(True)
    (model.module()(exact) * upstream).sum().backward()

    estimator = ZerothOrderClassifier(model, directions=4000, sigma=1e-3)
    approx = x.clone().requires_grad_(True)
    (estimator.module()(approx) * upstream).sum().backward()

    for i in range(4):
        cos = torch.nn.functional.cosine_similarity(exact.grad[i].flatten(), approx.grad[i].flatten(), dim=0)
        assert cos > 0.9, f"image {i}: cosine {cos:.3f}"
    assert estimator.queries == 4 + 2 * 4000 * 4
