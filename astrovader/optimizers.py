"""Adam with one fused kernel per variable.

Keras 3's Adam updates a variable with about ten element-wise TensorFlow ops (two moment
updates, square, sqrt, divide, assignments), each a pass over the weights and both moment
slots. For the MLP VaDE at batch 100 on a CPU that memory-bound pass cost as much as the
network's matmuls (issue 14). :class:`FusedAdam` does the same arithmetic in TensorFlow's
``ResourceApplyAdam`` kernel -- one pass per variable, no temporaries -- and otherwise is
``keras.optimizers.Adam`` (clipping, schedules, weight decay, EMA, loss scaling and
``tf.distribute`` updates all come from the base class).
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["FusedAdam"]


def _handle(variable):
    """The resource handle of a Keras or TF variable (a mirrored one's replica inside ``update``)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


@keras.saving.register_keras_serializable(package="astrovader")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose per-variable update is TF's fused ``ResourceApplyAdam``.

    Same update rule (Kingma & Ba, as Keras writes it): ``m <- b1 m + (1 - b1) g``,
    ``v <- b2 v + (1 - b2) g^2``, ``w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``.
    ``amsgrad=True`` falls back to the unfused Keras update.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        i = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[i]), v=_handle(self._velocities[i]),
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype), use_locking=False)
