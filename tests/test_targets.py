"""Three-class targets (Kumar et al. 2017) from instance maps, checked by hand."""
import numpy as np
import pytest

from nuclei_tf.data.targets import three_class_map, three_class_targets


def test_touching_nuclei_are_parted_by_both_boundaries():
    instances = np.zeros((8, 14), np.int32)
    instances[1:7, 1:7] = 1
    instances[1:7, 7:13] = 2  # touches nucleus 1 along columns 6 | 7
    expected = np.zeros((8, 14), np.uint8)
    expected[1:7, 1:13] = 2  # within 2 px of background or of the other nucleus
    expected[3:5, 3:5] = 1  # 2 px or more away from both: rows 3-4, columns 3-4 and 9-10
    expected[3:5, 9:11] = 1
    np.testing.assert_array_equal(three_class_map(instances, width=2), expected)


def test_width_is_a_euclidean_radius_and_a_map_edge_is_no_boundary():
    instances = np.ones((11, 11), np.int32)
    instances[5, 5] = 0  # one background pixel
    classes = three_class_map(instances, width=2)
    assert (classes == 2).sum() == 12  # the radius-2 disk: 13 pixels, the background one excluded
    assert classes[6, 6] == 2 and classes[7, 5] == 2 and classes[7, 6] == 1  # sqrt 2, 2 and sqrt 5 px away
    assert (classes[0] == 1).all() and (classes[:, 0] == 1).all()  # the nucleus is cut by the edge there
    one = three_class_map(instances, width=1)
    assert (one == 2).sum() == 4 and one[6, 6] == 1  # 4-neighbours only


def test_one_hot_targets_and_bad_width():
    instances = np.zeros((6, 6), np.int32)
    instances[1:5, 1:5] = 3
    targets = three_class_targets(instances, width=1)
    assert targets.shape == (6, 6, 3) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets.sum(-1), 1.0)
    np.testing.assert_array_equal(targets[..., 1], np.pad(np.ones((2, 2)), 2))  # interior: the centre 2 x 2
    np.testing.assert_array_equal(targets[..., 0], instances == 0)
    with pytest.raises(ValueError, match="boundary width must be >= 1"):
        three_class_map(instances, width=0)
