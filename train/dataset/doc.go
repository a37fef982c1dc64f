// Package dataset reads image classification data sets from folders and
// turns images into a model's input tensors, the way torchvision does.
//
// # Data sets
//
// LoadDataset reads a folder in one of two layouts:
//
//	DIR/train/<class>/*   training images, one folder per class
//	DIR/val/<class>/*     optional validation images ("valid" and
//	                      "validation" are accepted as well)
//	DIR/test/<class>/*    optional test images
//
// or, without a train folder,
//
//	DIR/<class>/*         all of them training images
//
// The classes are the training class folders sorted by name, and a
// Sample's Label is its class's position in that list. The val and test
// class folders must be training classes (some may be missing). Images are
// the files ending in .jpg, .jpeg, .png, .bmp, .gif or .webp, in any case;
// other files, subfolders of class folders, and names starting with a dot
// are ignored. Images are listed in file name order, so a data set always
// reads the same way.
//
// Without a val folder DataConfig.ValSplit > 0 holds out round(ValSplit·n)
// of each class's n training images for validation (stratified), keeping
// at least one in training; the choice is a shuffle seeded by
// DataConfig.Seed, so one seed always gives the same split. With a val
// folder ValSplit is not used.
//
// LoadDataset fails, with an error naming the folder and saying what to
// do, when the folder is missing or a file, has no class folders, has
// fewer than 2 classes, has a class folder with no images (or none that
// can be read), or has a val or test class that is not a training class;
// and when ValSplit is outside [0, 1). A file that has an image extension
// but is not an image of a known format is skipped and listed in
// Dataset.Skipped; a file whose data turn out corrupt only when decoded
// is skipped by LoadTensors, or fails it when strict.
//
// LoadSplitFolder reads one folder for evaluation, DIR/<class>/* or
// DIR/test/<class>/*, naming its classes by a model's labels.
//
// # Preprocessing
//
// Preprocess describes how an image becomes an input tensor, and
// PreprocessFor reads it from a model: the layout (NCHW or NHWC),
// channels and size from the model's first input, the rest from the
// model's "preprocessing" metadata when graft (or the model's author)
// recorded it, else from the defaults documented on Preprocess, which are
// torchvision's ImageNet ones. Tensor then does what torchvision's
// Resize(Resize), CenterCrop(Height, Width), ToTensor and Normalize(Mean,
// Std) do on a PIL image: the shorter side is resized to Resize, a
// Height x Width crop is taken from the center, 8-bit values are
// multiplied by Scale (1/255) and normalized per channel. Resampling is
// bilinear and antialiased when shrinking, and gives the bytes Pillow's
// Image.resize(size, BILINEAR) gives from the same pixels. The usual
// JPEGs (baseline, gray or YCbCr) are decoded by graft's own decoder,
// about four times as fast as image/jpeg, whose luma and chroma samples
// are libjpeg's (Pillow's) exactly; chroma is not interpolated as
// libjpeg's is, so colors can differ slightly from PIL's. Other JPEGs
// (progressive, CMYK, ...) are image/jpeg's. An image whose shorter side already is Resize is not
// resampled at all: its pixels reach the tensor exactly. The conversion
// and the resampling run in AVX2 where the CPU has it, with the same
// results; GRAFT_CPU=generic keeps them to Go.
//
// Augment does, instead of the resize and center crop, what
// RandomResizedCrop and RandomHorizontalFlip do, drawing from the
// *rand.Rand it is given, so that a seed gives the same epoch every time.
//
// DecodeFile reads JPEG, PNG, BMP, GIF (its first frame) and WebP files,
// by content rather than by extension; errors name the file, and an image
// of more than MaxPixels pixels is refused before it is decoded.
// LoadTensors decodes and preprocesses many images in parallel; the
// result does not depend on the number of workers.
//
// # Errors
//
// Errors name the file or folder at fault and say what to do about it;
// an image's decoding error wraps the decoder's with %w. The package has
// no mutable package state: ImageNetMean, ImageNetStd and ImageExts return
// fresh slices.
package dataset
