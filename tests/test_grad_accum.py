"""SLAP's loss is a mean of per-sample terms, so accumulating k micro-batches equals one k-times larger batch
when no BatchNorm couples the samples (the reference's audio projector and predictors); CLAP's is not (its
negatives are the batch), nor is SLAP's with BatchNorm in its projectors (the shipped tiny config's), whose
statistics are each micro-batch's."""

from conftest import random_batch, split_batch, tiny_model


def gradients(model, batches):
    """Sum of the gradients of loss / len(batches) over the micro-batches, as ESPnet's --accum_grad does."""
    model.zero_grad()
    for batch in batches:
        (model(**batch)[0] / len(batches)).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def max_gradient_difference(model, batch, parts):
    full = gradients(model, [batch])
    accumulated = gradients(model, split_batch(batch, parts))
    assert full.keys() == accumulated.keys() and full
    return max((full[n] - accumulated[n]).abs().max().item() for n in full)


NO_BATCHNORM = ("--model_conf", "projector_batchnorm=false", "--model_conf", "predictor_batchnorm=false")


def test_slap_accumulated_gradient_equals_large_batch(tmp_path):
    _, model = tiny_model(tmp_path, "slap", *NO_BATCHNORM, dropout=False)
    model.train()
    assert max_gradient_difference(model, random_batch(16), parts=4) < 1e-5


def test_slap_with_batchnorm_projectors_accumulates_micro_batch_statistics(tmp_path):
    _, model = tiny_model(tmp_path, "slap", "--model_conf", "projector_batchnorm=true", dropout=False)
    model.train()
    assert max_gradient_difference(model, random_batch(16), parts=4) > 1e-4


def test_clap_accumulated_gradient_differs_from_large_batch(tmp_path):
    _, model = tiny_model(tmp_path, "clap", dropout=False)
    model.train()
    assert max_gradient_difference(model, random_batch(16), parts=4) > 1e-3
