// Package report draws a run's metrics for people and tools: PNG line
// plots (lines, ticks and a 5×7 bitmap font, no plotting library) and
// TensorBoard event files (TFRecord framing around hand-encoded scalar
// events, no protobuf runtime). It knows nothing of training; package
// train feeds it.
package report
