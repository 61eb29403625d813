"""Compositional scenes: 3-5 objects per episode from 7 colours x 5 shapes, reproducible from
the seed, most sharing a colour and a shape with another, and combinations held out of training
never shown to it."""

from collections import Counter

import numpy as np
import pytest

from vla_ros.learn.episodes import episode_seed, sample_task
from vla_ros.sim.objects import COMPOSITIONAL
from vla_ros.sim.tasks import Split

SEEDS = [episode_seed(0, index) for index in range(2000)]


def test_episodes_draw_three_to_five_different_objects_from_every_colour_and_shape():
    seen = set()
    sharing = 0
    for seed in SEEDS:
        drawn = COMPOSITIONAL.draw(np.random.default_rng(seed))
        assert 3 <= len(drawn) <= 5
        assert len(set(drawn)) == len(drawn)
        assert max(Counter(shape for _, shape in drawn).values()) <= COMPOSITIONAL.max_per_shape
        colours = Counter(colour for colour, _ in drawn)
        shapes = Counter(shape for _, shape in drawn)
        sharing += max(colours.values()) > 1 and max(shapes.values()) > 1
        seen.update(drawn)
    assert len(COMPOSITIONAL.colours) >= 7 and len(COMPOSITIONAL.shapes) >= 5
    assert seen == set(COMPOSITIONAL.training_combinations)
    # Both words are needed in most episodes: another object shares the colour, another the shape.
    assert sharing / len(SEEDS) >= 0.75


def test_held_out_combinations_are_never_drawn_for_training_and_once_when_asked_for():
    held_out = COMPOSITIONAL.held_out
    assert held_out and all(c in COMPOSITIONAL.combinations for c in held_out)
    for seed in SEEDS:
        assert not set(COMPOSITIONAL.draw(np.random.default_rng(seed))) & held_out
        unseen = COMPOSITIONAL.draw(np.random.default_rng(seed), unseen=True)
        assert len(set(unseen) & held_out) == 1
    # Each colour and each shape is still shown in training, in other combinations.
    training = COMPOSITIONAL.training_combinations
    assert {colour for colour, _ in training} == set(COMPOSITIONAL.colours)
    assert {shape for _, shape in training} == set(COMPOSITIONAL.shapes)


@pytest.mark.parametrize("scene", ["mobile", "arm", "humanoid"])
def test_a_compositional_scene_replays_from_its_seed(worlds, scene):
    world = worlds(scene, "compositional")

    def shown(seed):
        world.reset(seed)
        positions = [world.object_position(obj) for obj in world.objects]
        return world.objects, np.array(positions), world.render()

    first, again, other = shown(11), shown(11), shown(12)
    assert first[0] == again[0]
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[2], again[2])
    assert first[0] != other[0]


def test_objects_not_drawn_are_neither_seen_nor_touched_and_drawn_ones_stand_still(worlds):
    world = worlds("arm", "compositional")
    model = world.model
    for seed in SEEDS[:5]:
        world.reset(seed)
        shown = {obj.body: obj for obj in world.objects}
        for body in range(model.nbody):
            name = model.body(body).name
            if not name.startswith("object_"):
                continue
            geoms = range(
                model.body_geomadr[body], model.body_geomadr[body] + model.body_geomnum[body]
            )
            if name in shown:
                rgb = COMPOSITIONAL.colours[shown[name].colour]
                np.testing.assert_allclose(model.geom_rgba[geoms[0]], (*rgb, 1.0))
                assert all(model.geom_contype[g] or model.geom_conaffinity[g] for g in geoms)
            else:
                assert all(model.geom_rgba[g][3] == 0 for g in geoms)
                assert not any(model.geom_contype[g] or model.geom_conaffinity[g] for g in geoms)
        start = {obj.body: world.object_position(obj) for obj in world.objects}
        world.step(1.0)
        for obj in world.objects:  # resting on the table: no hidden body knocks them over
            np.testing.assert_allclose(world.object_position(obj), start[obj.body], atol=0.005)


def test_the_spatial_split_tells_same_shaped_objects_apart_by_place(worlds):
    world = worlds("arm", "compositional")
    by_noun = 0
    for seed in SEEDS[:30]:
        world.reset(seed)
        sampled = sample_task(world, seed, Split.SPATIAL)
        shapes = Counter(obj.shape for obj in world.objects)
        if max(shapes.values()) > 1 and "one" not in sampled.instruction.split():
            by_noun += 1
            assert shapes[sampled.target.shape] > 1, sampled.instruction
        assert world.set_instruction(sampled.instruction).target == sampled.target.name
    assert by_noun >= 15  # "the left cube" with two cubes, not only "the nearest one"


def test_the_combinations_split_needs_a_scene_that_shows_one(worlds):
    world = worlds("arm")
    world.reset(3)
    with pytest.raises(ValueError, match="compositional"):
        sample_task(world, 3, Split.COMBINATIONS)
    world = worlds("arm", "compositional")
    world.unseen_combinations = True
    try:
        for seed in SEEDS[:20]:
            world.reset(seed)
            target = sample_task(world, seed, Split.COMBINATIONS).target
            assert (target.colour, target.shape) in COMPOSITIONAL.held_out
    finally:
        world.unseen_combinations = False
