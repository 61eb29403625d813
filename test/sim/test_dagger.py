"""DAgger against plain cloning of the same size, in the real simulator: a tiny policy that has
also been shown the way back from where it goes wrong reaches its target more often.

Both see 40 episodes labelled by the expert, about as many steps: 40 demonstrations, or 20
demonstrations and 20 episodes the policy cloned from them drove (labelled by the expert), each
trained the same way and evaluated governed on 30 placements neither was trained on."""

import io

from vla_ros.learn.collect import collect
from vla_ros.learn.dagger import relabel
from vla_ros.learn.dataset import iter_episodes
from vla_ros.learn.evaluate import Deployment, evaluate
from vla_ros.learn.recipes import DAGGER_SEED
from vla_ros.learn.train import train
from vla_ros.model import load_policy
from vla_ros.sim.objects import ObjectSet
from vla_ros.sim.scenes import compositional
from vla_ros.sim.world import SimWorld

# One object, so that a tiny network's only job is to drive to what it sees.
ONE_RED_CUBE = ObjectSet(
    colours={"red": (0.85, 0.1, 0.1)},
    shapes=("cube",),
    held_out=frozenset(),
    count=(1, 1),
    shared=0.0,
)
IMAGE_SIZE = (32, 32)
SECONDS = 8.0  # per learner and evaluation episode: the expert needs about 5
TINY = {
    "vision.channels": [8, 16],
    "fusion.d_model": 16,
    "fusion.hidden": 32,
    "fusion.heads": 2,
    "fusion.blocks": 1,
    "uncertainty.ensemble": 1,
    "uncertainty.error_model": False,
}


def test_a_tiny_dagger_run_improves_on_cloning_of_the_same_size(tmp_path, tiny_bert, small_camera):
    spec = compositional("mobile", ONE_RED_CUBE)
    pictures = {"image_size": IMAGE_SIZE, "camera_size": small_camera}
    options = {
        "config_overrides": {**TINY, "text.pretrained": tiny_bert},
        "epochs": 40,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "heldout_fraction": 0.2,
        "log": io.StringIO(),
    }

    def demonstrate(folder: str, episodes: int) -> None:
        # plain demonstrations: the expert's own path, without the noise that collection adds
        collect(spec, tmp_path / folder, episodes, action_noise=0.0, progress=False, **pictures)

    demonstrate("cloning", 40)
    cloned = train(tmp_path / "cloning", tmp_path / "cloned", **options)
    demonstrate("dagger", 20)
    first = train(tmp_path / "dagger", tmp_path / "round0", **options)
    relabel(
        spec,
        tmp_path / "dagger",
        load_policy(str(first)),
        20,
        seed=DAGGER_SEED,
        timeout=SECONDS,
        progress=False,
        **pictures,
    )
    dagger = train(tmp_path / "dagger", tmp_path / "round1", **options)

    # the same number of episodes labelled by the expert, and about as many steps
    sizes = {
        name: [len(episode) for episode in iter_episodes(tmp_path / name)]
        for name in ("cloning", "dagger")
    }
    assert len(sizes["cloning"]) == len(sizes["dagger"]) == 40
    assert 0.75 < sum(sizes["dagger"]) / sum(sizes["cloning"]) < 1.5, sizes

    with SimWorld(spec, camera_size=small_camera, episode_timeout=SECONDS) as world:
        success = {
            name: evaluate(
                spec,
                30,
                load_policy(str(checkpoint)),
                world=world,
                progress=False,
                deployment=Deployment.for_scene("mobile"),
                **pictures,
            ).success_rate
            for name, checkpoint in (("cloned", cloned), ("dagger", dagger))
        }
    # Measured: 0.80 / 0.70 / 0.77 against 0.27 / 0.23 / 0.30 (training seeds 0, 1, 2). With the
    # learner's own commands stored in place of the expert's labels: 0.40 and 0.30 (seeds 0, 1).
    assert success["dagger"] >= success["cloned"] + 0.3, success
