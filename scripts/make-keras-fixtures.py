"""Makes the Keras fixtures of test/io/keras_files.test.ts (test/fixtures/keras/).

    TF_ENABLE_ONEDNN_OPTS=0 python scripts/make-keras-fixtures.py [out_dir]

Needs TensorFlow 2.16+ (Keras 3) and h5py. For each case it builds a Keras model, gives every
batch norm random statistics (so that they matter), saves it as <case>.keras (Keras 3) and
<case>.h5 (Keras 3's legacy HDF5 writer), and — for the CIFAR cases — also <case>.keras2.h5: the
same model in the layout of Keras 2 / tf.keras 2.x HDF5 files (inbound_nodes as nested lists,
batch_input_shape, weight names with ':0'), written with h5py from the Keras 3 file, since
Keras 2 cannot be installed next to Keras 3.

Keras' outputs for a fixed input batch go to <case>.io.bin (float32 little-endian: the input
[n, h, w, c], then the logits [n, classes] computed from Keras' own penultimate features and the
Dense kernel, then Keras' model.predict output [n, classes]); cases.json describes each case.

Cases:
  cifar_resnet20_v1, cifar_resnet20_v2   the keras.io / keras-team example "cifar10_resnet"
                                         (ResNet-20 v1 and v2, 32×32×3, 10 classes), verbatim
                                         apart from the Keras 3 imports and the base width (8
                                         filters instead of 16, to keep the files small; the
                                         full-width ones are checked by
                                         scripts/check-keras-applications.mjs)
  applications_resnet_v1_small,          keras.applications' ResNet code path (ResNet(), its
  applications_resnet_v2_small           stack functions, model names 'resnet50' /
                                         'resnet50v2') with reduced widths and one (v1) or two (v2:
                                         its fewest) blocks per stage, 32×32×3, 10 classes: the real ResNet50/50V2
                                         are ~100 MB (scripts/check-keras-applications.mjs
                                         checks those without committing them)
  nested_functional, nested_sequential   transfer learning: that ResNet (include_top=False) as a
                                         layer of a functional / Sequential model with a new head
  features                               the rest of the supported set: an input Rescaling,
                                         Conv2D without bias, dilated, grouped and 'valid'
                                         convolutions, ReLU layers, 'same' max pooling, a
                                         three-input Add, Dropout, average pooling, Flatten
"""

import json
import os
import sys

import h5py
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras.src.applications import resnet as apps  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "keras")
BATCH = 2
rng = np.random.default_rng(19)


# --- keras.io cifar10_resnet (https://keras.io/zh/examples/cifar10_resnet/), Keras 3 imports ---
def resnet_layer(inputs, num_filters=16, kernel_size=3, strides=1, activation="relu", batch_normalization=True, conv_first=True):
    conv = layers.Conv2D(num_filters, kernel_size=kernel_size, strides=strides, padding="same",
                         kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.l2(1e-4))
    x = inputs
    if conv_first:
        x = conv(x)
        if batch_normalization:
            x = layers.BatchNormalization()(x)
        if activation is not None:
            x = layers.Activation(activation)(x)
    else:
        if batch_normalization:
            x = layers.BatchNormalization()(x)
        if activation is not None:
            x = layers.Activation(activation)(x)
        x = conv(x)
    return x


def resnet_v1(input_shape, depth, num_classes=10, base=16):
    num_filters = base
    num_res_blocks = int((depth - 2) / 6)
    inputs = keras.Input(shape=input_shape)
    x = resnet_layer(inputs=inputs, num_filters=num_filters)
    for stack in range(3):
        for res_block in range(num_res_blocks):
            strides = 1
            if stack > 0 and res_block == 0:
                strides = 2
            y = resnet_layer(inputs=x, num_filters=num_filters, strides=strides)
            y = resnet_layer(inputs=y, num_filters=num_filters, activation=None)
            if stack > 0 and res_block == 0:
                x = resnet_layer(inputs=x, num_filters=num_filters, kernel_size=1, strides=strides, activation=None, batch_normalization=False)
            x = layers.add([x, y])
            x = layers.Activation("relu")(x)
        num_filters *= 2
    x = layers.AveragePooling2D(pool_size=8)(x)
    y = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer="he_normal")(y)
    return keras.Model(inputs=inputs, outputs=outputs)


def resnet_v2(input_shape, depth, num_classes=10, base=16):
    num_filters_in = base
    num_res_blocks = int((depth - 2) / 9)
    inputs = keras.Input(shape=input_shape)
    x = resnet_layer(inputs=inputs, num_filters=num_filters_in, conv_first=True)
    for stage in range(3):
        for res_block in range(num_res_blocks):
            activation = "relu"
            batch_normalization = True
            strides = 1
            if stage == 0:
                num_filters_out = num_filters_in * 4
                if res_block == 0:
                    activation = None
                    batch_normalization = False
            else:
                num_filters_out = num_filters_in * 2
                if res_block == 0:
                    strides = 2
            y = resnet_layer(inputs=x, num_filters=num_filters_in, kernel_size=1, strides=strides, activation=activation,
                             batch_normalization=batch_normalization, conv_first=False)
            y = resnet_layer(inputs=y, num_filters=num_filters_in, conv_first=False)
            y = resnet_layer(inputs=y, num_filters=num_filters_out, kernel_size=1, conv_first=False)
            if res_block == 0:
                x = resnet_layer(inputs=x, num_filters=num_filters_out, kernel_size=1, strides=strides, activation=None,
                                 batch_normalization=False)
            x = layers.add([x, y])
        num_filters_in = num_filters_out
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.AveragePooling2D(pool_size=8)(x)
    y = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer="he_normal")(y)
    return keras.Model(inputs=inputs, outputs=outputs)


# --- keras.applications' ResNet, reduced ---
def applications_small(preact):
    if not preact:
        def stack_fn(x):
            x = apps.stack_residual_blocks_v1(x, 4, 1, stride1=1, name="conv2")
            x = apps.stack_residual_blocks_v1(x, 8, 1, name="conv3")
            x = apps.stack_residual_blocks_v1(x, 12, 1, name="conv4")
            return apps.stack_residual_blocks_v1(x, 16, 1, name="conv5")
        name = "resnet50"
    else:
        def stack_fn(x):
            x = apps.stack_residual_blocks_v2(x, 4, 2, name="conv2")
            x = apps.stack_residual_blocks_v2(x, 8, 2, name="conv3")
            x = apps.stack_residual_blocks_v2(x, 12, 2, name="conv4")
            return apps.stack_residual_blocks_v2(x, 16, 2, stride1=1, name="conv5")
        name = "resnet50v2"
    return apps.ResNet(stack_fn, preact, True, name=name, weights=None, input_shape=(32, 32, 3), classes=10)


def features_model():
    inputs = keras.Input((20, 20, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    a = layers.Conv2D(8, 3, padding="same", dilation_rate=2, name="dilated")(x)
    b = layers.Conv2D(8, 3, padding="same", groups=2, activation="relu", name="grouped")(x)
    c = layers.Conv2D(8, 1, name="pointwise")(x)
    x = layers.Add(name="sum3")([a, b, c])
    x = layers.Activation("relu", name="sum3_relu")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    x = layers.Conv2D(12, 3, strides=2, padding="valid", name="valid_conv")(x)
    x = layers.AveragePooling2D(2, name="avg")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = layers.Dense(7, name="logits")(x)
    return keras.Model(inputs, outputs, name="features")


def nested(kind):
    """Transfer learning: keras.applications' ResNet (reduced, include_top=False) as a layer of
    a functional or a Sequential model, with a new head."""
    def stack_fn(x):
        x = apps.stack_residual_blocks_v1(x, 4, 1, stride1=1, name="conv2")
        return apps.stack_residual_blocks_v1(x, 8, 1, name="conv3")

    base = apps.ResNet(stack_fn, False, True, name="resnet50", weights=None, input_shape=(32, 32, 3), include_top=False)
    if kind == "functional":
        inputs = keras.Input((32, 32, 3))
        x = layers.GlobalAveragePooling2D(name="gap")(base(inputs))
        return keras.Model(inputs, layers.Dense(5, activation="softmax", name="head")(x), name="transfer")
    return keras.Sequential([keras.Input((32, 32, 3)), base, layers.GlobalAveragePooling2D(name="gap"), layers.Dense(5, name="head")], name="transfer_seq")


def all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def randomize_batch_norms(model):
    for layer in all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c), rng.uniform(0.5, 1.5, c)])


def keras2_h5(src, dst):
    """Rewrites a Keras 3 legacy .h5 in Keras 2's layout (see the module's docstring)."""
    with h5py.File(src, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = {}
        for layer in f["model_weights"].attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = [n.decode() if isinstance(n, bytes) else n for n in f["model_weights"][layer].attrs["weight_names"]]
            weights[layer] = [(n + ":0", np.array(f["model_weights"][layer][n])) for n in names]
    cfg = config["config"]
    for layer in cfg["layers"]:
        lc = layer["config"]
        if layer["class_name"] == "InputLayer":
            lc["batch_input_shape"] = lc.pop("batch_shape")
        nodes = []
        for node in layer["inbound_nodes"]:
            args = node["args"][0]
            tensors = args if isinstance(args, list) else [args]
            nodes.append([[t["config"]["keras_history"][0], t["config"]["keras_history"][1], t["config"]["keras_history"][2], {}] for t in tensors])
        layer["inbound_nodes"] = nodes
        lc["dtype"] = "float32"
    cfg["input_layers"] = [cfg["input_layers"]] if isinstance(cfg["input_layers"][0], str) else cfg["input_layers"]
    cfg["output_layers"] = [cfg["output_layers"]] if isinstance(cfg["output_layers"][0], str) else cfg["output_layers"]
    config["class_name"] = "Functional"
    with h5py.File(dst, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n in weights]
        for layer, ws in weights.items():
            lg = g.create_group(layer)
            lg.attrs["weight_names"] = [n.encode() for n, _ in ws]
            for n, v in ws:
                lg.create_dataset(n, data=v)


def save_case(name, model, inputs, keras2):
    randomize_batch_norms(model)
    model.save(os.path.join(OUT, f"{name}.keras"))
    model.save(os.path.join(OUT, f"{name}.h5"))
    files = [f"{name}.keras", f"{name}.h5"]
    if keras2:
        keras2_h5(os.path.join(OUT, f"{name}.h5"), os.path.join(OUT, f"{name}.keras2.h5"))
        files.append(f"{name}.keras2.h5")
    dense = model.layers[-1]
    features = keras.Model(model.inputs, dense.input)(inputs).numpy().astype(np.float64)
    kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
    logits = features @ kernel + bias
    predicted = model.predict(inputs, verbose=0)
    with open(os.path.join(OUT, f"{name}.io.bin"), "wb") as f:
        for a in (inputs, logits, predicted):
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
    activation = dense.get_config().get("activation")
    return {
        "files": files,
        "inputShape": list(inputs.shape[1:]),
        "batch": int(inputs.shape[0]),
        "classes": int(logits.shape[1]),
        "outputActivation": activation,
        "layers": len(model.layers),
    }


def hostile_h5(base):
    """Hostile variants of a valid Keras .h5 for test/io/fuzz_keras.test.ts (hostile/*.h5)."""
    out = os.path.join(OUT, "hostile")
    os.makedirs(out, exist_ok=True)

    def variant(name, edit):
        path = os.path.join(out, f"{name}.h5")
        with open(base, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        with h5py.File(path, "r+") as f:
            edit(f)

    def cyclic_hard(f):  # a group that contains itself: model_weights/stem/loop → model_weights/stem
        f["model_weights/stem/loop"] = f["model_weights/stem"]

    def cyclic_soft(f):  # soft links that point at each other, and one at its own group
        f["model_weights/stem/a"] = h5py.SoftLink("/model_weights/stem/b")
        f["model_weights/stem/b"] = h5py.SoftLink("/model_weights/stem/a")
        f["model_weights/stem/up"] = h5py.SoftLink("/model_weights")

    def external(f):  # an external link to a file on the writer's disk
        f["model_weights/stem/ext"] = h5py.ExternalLink("/etc/passwd", "/x")

    def huge_dims(f):  # a dataset of 2^40 float32 declared, chunked, never written (a small file)
        del f["model_weights/stem/stem/kernel"]
        f["model_weights/stem/stem"].create_dataset("kernel", shape=(2**20, 2**20), dtype="f4", chunks=(64, 64))

    def bomb(f):  # 64 MiB of zeros, gzip-compressed to a few kB
        f["model_weights/stem/stem"].create_dataset("bomb", data=np.zeros((4096, 4096), "f4"), chunks=(1024, 1024), compression="gzip", compression_opts=9)

    def int_kernel(f):
        k = np.array(f["model_weights/stem/stem/kernel"])
        del f["model_weights/stem/stem/kernel"]
        f["model_weights/stem/stem"].create_dataset("kernel", data=k.astype("i4"))

    def string_kernel(f):
        del f["model_weights/stem/stem/kernel"]
        f["model_weights/stem/stem"].create_dataset("kernel", data=np.array([b"not a weight"] * 4))

    def missing_group(f):
        del f["model_weights/stem"]

    def deep(f):
        g = f["model_weights/stem"]
        for i in range(100):
            g = g.create_group("d")

    def nan_weights(f):
        k = np.array(f["model_weights/stem/stem/kernel"])
        k[0, 0, 0, 0] = np.nan
        f["model_weights/stem/stem/kernel"][...] = k

    def wrong_shape(f):
        k = np.array(f["model_weights/stem/stem/kernel"])
        del f["model_weights/stem/stem/kernel"]
        f["model_weights/stem/stem"].create_dataset("kernel", data=k[:, :, :, :4])

    def config_not_json(f):
        f.attrs["model_config"] = "{ not json"

    def no_config(f):
        del f.attrs["model_config"]

    for name, edit in list(locals().items()):
        if callable(edit) and name not in ("variant",):
            variant(name, edit)


def without_var_names(src, dst):
    """A copy of a .keras whose weights file lacks the vars groups' 'name' attributes, as Keras
    3 releases before they were added wrote it: layers are then found by Keras' own keys."""
    import io
    import zipfile

    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO(entries["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        def strip(name, obj):
            if "name" in obj.attrs:
                del obj.attrs["name"]
        f.visititems(strip)
        if "name" in f["vars"].attrs:
            del f["vars"].attrs["name"]
    entries["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)


def main():
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(19)
    cases = {}
    x32 = rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32)
    cases["cifar_resnet20_v1"] = save_case("cifar_resnet20_v1", resnet_v1((32, 32, 3), 20, base=8), x32, True)
    cases["cifar_resnet20_v2"] = save_case("cifar_resnet20_v2", resnet_v2((32, 32, 3), 20, base=8), x32, False)
    cases["applications_resnet_v1_small"] = save_case("applications_resnet_v1_small", applications_small(False), x32 * 100, False)
    cases["applications_resnet_v2_small"] = save_case("applications_resnet_v2_small", applications_small(True), x32, False)
    x20 = rng.uniform(0, 255, (BATCH, 20, 20, 3)).astype(np.float32)
    cases["features"] = save_case("features", features_model(), x20, False)
    cases["nested_functional"] = save_case("nested_functional", nested("functional"), x32, False)
    cases["nested_sequential"] = save_case("nested_sequential", nested("sequential"), x32, False)
    os.remove(os.path.join(OUT, "nested_sequential.h5"))
    cases["nested_sequential"]["files"].remove("nested_sequential.h5")
    hostile_h5(os.path.join(OUT, "features.h5"))
    without_var_names(os.path.join(OUT, "features.keras"), os.path.join(OUT, "features.nonames.keras"))
    cases["features"]["files"].append("features.nonames.keras")
    cases["_"] = {"tensorflow": __import__("tensorflow").__version__, "keras": keras.__version__, "h5py": h5py.__version__}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=2)
    for root, _, files in os.walk(OUT):
        for n in sorted(files):
            print(os.path.join(root, n), os.path.getsize(os.path.join(root, n)))


if __name__ == "__main__":
    main()
