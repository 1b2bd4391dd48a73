"""FaceDataModule: identity batches, validation shards, epochs, the sampler's checkpoint state."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from elim.config import preprocess_for
from elim.data.sampler import IdentityBatchSampler
from elim.data.splits import make_splits
from elim.errors import ElimError
from elim.models import build_model
from elim.training import ElimModule, FaceDataModule
from elim.training.datamodule import identity_names
from elim.training.distributed import shard


def _data(config, cache, trainer=None) -> FaceDataModule:
    data = FaceDataModule(config, cache, make_splits(cache.table, config.data))
    data.trainer = trainer
    data.setup("fit")
    return data


def _trainer(rank=0, world=1, epoch=0, consumed=0):
    progress = SimpleNamespace(current=SimpleNamespace(ready=consumed))
    return SimpleNamespace(global_rank=rank, world_size=world, current_epoch=epoch,
                           fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(
                               batch_progress=progress)))


def test_train_batches_are_identity_batches_of_the_train_part(tiny_config, tiny_cache):
    config = tiny_config()
    data = _data(config, tiny_cache)
    train = set(tiny_cache.table["identity"].iloc[data.splits.train])
    assert set(data.identity_names) == train and data.identity_names == sorted(train)
    batches = list(data.train_dataloader())
    assert len(batches) == data.batches_per_epoch() == len(data.sampler)
    seen = 0
    for images, y, codes in batches:
        assert images.dtype == torch.uint8 and y.shape == (len(codes), 2)
        counts = torch.unique(codes, return_counts=True)[1]
        assert len(counts) == config.data.batch_identities
        assert int(counts.max()) <= config.data.samples_per_identity
        seen += len(codes)
    assert seen >= len(data.splits.train)  # every sample once (plus fillers)


def test_each_process_gets_its_identities_and_its_validation_shard(tiny_config, tiny_cache):
    config = tiny_config()
    parts = [_data(config, tiny_cache, _trainer(rank, 2)) for rank in (0, 1)]
    drawn = [{p.identity_names[int(c)] for _, _, codes in p.train_dataloader() for c in codes}
             for p in parts]
    assert drawn[0] and drawn[1] and not drawn[0] & drawn[1]
    assert len(parts[0].train_dataloader()) == len(parts[1].train_dataloader()) \
        == parts[0].batches_per_epoch(2)
    val = parts[0].splits.val
    for rank, part in enumerate(parts):
        loader = part.val_dataloader()
        np.testing.assert_array_equal(loader.dataset.indices, shard(val, rank, 2))
        labels = torch.cat([y for _, y, _ in loader])  # in order, unshuffled
        np.testing.assert_array_equal(
            labels.numpy(),
            tiny_cache.table[["valence", "arousal"]].to_numpy(np.float32)[shard(val, rank, 2)])


def test_too_few_validation_faces_for_the_processes_is_an_error(tiny_config, tiny_cache):
    config = tiny_config()
    splits = make_splits(tiny_cache.table, config.data)
    splits.val = splits.val[:1]
    data = FaceDataModule(config, tiny_cache, splits)
    data.trainer = _trainer(0, 2)
    with pytest.raises(ElimError, match="1 validation faces cannot be shared by 2 processes"):
        data.setup("fit")
    with pytest.raises(RuntimeError, match="setup"):
        FaceDataModule(config, tiny_cache, splits).train_dataloader()


def test_sampler_state_round_trip_continues_after_the_consumed_batches(tiny_config, tiny_cache):
    config = tiny_config()
    first = _data(config, tiny_cache)
    first.sampler.set_epoch(1)
    full = [y for _, y, _ in first.train_dataloader()]
    # Lightning has fetched a batch ahead: training consumed 3 batches of epoch 1
    first.trainer = _trainer(epoch=1, consumed=3)
    state = first.state_dict()
    assert state["sampler"]["epoch"] == 1 and state["sampler"]["position"] == 3
    again = _data(config, tiny_cache)
    again.load_state_dict(state)
    rest = [y for _, y, _ in again.train_dataloader()]
    assert len(rest) == len(full) - 3
    assert all(torch.equal(a, b) for a, b in zip(rest, full[3:]))


@pytest.mark.filterwarnings("ignore:.*LeafSpec")
@pytest.mark.filterwarnings("ignore:.*does not have many workers")
def test_lightning_moves_the_sampler_to_each_epoch(tiny_config, tiny_cache):
    """Two batches per epoch: the second epoch starts the plan of epoch 1, not batch 3 of 0."""
    config = tiny_config(train={"epochs": 2})
    data = FaceDataModule(config, tiny_cache, make_splits(tiny_cache.table, config.data))
    seen: list[torch.Tensor] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch[1].clone())

    torch.manual_seed(0)
    module = ElimModule(build_model(config.model.to_model_dict()), config,
                        preprocess_for(config), total_steps=4)
    trainer = L.Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Record()], accelerator="cpu",
                        devices=1, use_distributed_sampler=False)
    trainer.fit(module, datamodule=data)
    dataset = data.train_dataloader().dataset
    expected = []
    for epoch in (0, 1):
        sampler = IdentityBatchSampler(dataset.identity_codes, config.data.batch_identities,
                                       config.data.samples_per_identity, seed=config.seed)
        sampler.set_epoch(epoch)
        expected += [torch.from_numpy(dataset.labels[b]) for b in list(sampler)[:2]]
    assert len(seen) == 4 and all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_identity_names_of_a_trainer(tiny_config, tiny_cache):
    data = _data(tiny_config(), tiny_cache)
    names = data.identity_names
    assert identity_names(SimpleNamespace(datamodule=data), [1, 0]) == [names[1], names[0]]
    assert identity_names(SimpleNamespace(datamodule=None), [3]) == ["3"]
