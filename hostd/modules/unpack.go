package modules

import (
	"fmt"
	"os"

	"github.com/klauspost/compress/zstd"
)

// maxModule bounds a module's decompressed size (the largest, amdgpu, is
// about 15 MiB unpacked): a corrupt file cannot make hostd allocate
// without end.
const maxModule = 64 << 20

// unpackModule reads a zstd-packed module file (initramfs.Pack).
func unpackModule(path string) ([]byte, error) {
	packed, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxModule))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	image, err := dec.DecodeAll(packed, nil)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", path, err)
	}
	return image, nil
}
