package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"github.com/graftml/graft/onnx"
)

// DefaultMemoryBudget is AdaptConfig.MemoryBudget's default: the RAM
// fine-tuning may hold for the tensors it trains from (decoded images, or
// the outputs of the frozen layers before the first trainable one) before
// it spills them to disk. 1 GiB suits a machine with a few GiB: mobilenet_v2
// fine-tuned from its last two blocks keeps 75 KB per 224x224 image in
// memory, so about 14,000 images fit; decoded images take 602 KB each.
const DefaultMemoryBudget = 1 << 30

// budget is the memory left for examples' rows, shared by the splits of
// one run, and the folder their spill files go to.
type budget struct {
	left    int64
	dir     string
	spilled int64 // bytes written to spill files
	noted   int64 // spilled bytes a note has mentioned
	files   []*spillFile
}

// release gives back the memory of examples no longer needed, and
// deletes their spill file.
func (b *budget) release(e *Examples) {
	b.left += 4 * int64(len(e.X))
	e.X = nil
	e.close()
}

// close deletes every spill file.
func (b *budget) close() {
	for _, f := range b.files {
		f.close()
	}
	b.files = nil
}

// rowBuilder collects examples' rows, of size floats each, in memory
// while the budget allows and in a spill file after that.
type rowBuilder struct {
	b    *budget
	size int
	x    []float32
	file *spillFile
	n    int
}

func newRowBuilder(b *budget, size int) *rowBuilder {
	return &rowBuilder{b: b, size: size}
}

// add appends whole rows.
func (r *rowBuilder) add(rows []float32) error {
	if len(rows)%r.size != 0 {
		return fmt.Errorf("internal error: %d values are not rows of %d", len(rows), r.size)
	}
	bytes := 4 * int64(len(rows))
	if r.file == nil && r.b.left < bytes {
		// move what is in memory to a file, and give its memory back
		f, err := newSpillFile(r.b.dir, r.size)
		if err != nil {
			return err
		}
		if err := f.write(r.x); err != nil {
			f.close()
			return err
		}
		r.b.left += 4 * int64(len(r.x))
		r.b.spilled += 4 * int64(len(r.x))
		r.x, r.file = nil, f
		r.b.files = append(r.b.files, f)
	}
	if r.file != nil {
		r.b.spilled += bytes
		r.n += len(rows) / r.size
		return r.file.write(rows)
	}
	r.b.left -= bytes
	r.x = append(r.x, rows...)
	r.n += len(rows) / r.size
	return nil
}

// fill sets ex's rows to those collected: X in memory, or the spill
// file.
func (r *rowBuilder) fill(ex *Examples) {
	ex.X, ex.spill = r.x, r.file
}

// spillFile holds rows of float32 values (little-endian) in a scratch
// file (onnx.CreateScratch): deleted once opened on Unix, elsewhere when
// closed, so nothing is left behind when the process dies.
type spillFile struct {
	f    *os.File
	size int // floats per row
	rows int
	buf  []byte
}

func newSpillFile(dir string, size int) (*spillFile, error) {
	f, err := onnx.CreateScratch(dir, "graft-spill-*.f32")
	if err != nil {
		return nil, fmt.Errorf("spilling examples beyond the memory budget: %w", err)
	}
	return &spillFile{f: f, size: size}, nil
}

// write appends rows at the end of the file.
func (s *spillFile) write(rows []float32) error {
	s.buf = s.buf[:0]
	for _, v := range rows {
		s.buf = binary.LittleEndian.AppendUint32(s.buf, math.Float32bits(v))
	}
	if _, err := s.f.WriteAt(s.buf, int64(s.rows)*int64(s.size)*4); err != nil {
		return fmt.Errorf("spilling examples beyond the memory budget: %w", err)
	}
	s.rows += len(rows) / s.size
	return nil
}

// read fills dst (a whole number of rows) with the rows from first on.
func (s *spillFile) read(first int, dst []float32) error {
	if cap(s.buf) < 4*len(dst) {
		s.buf = make([]byte, 4*len(dst))
	}
	b := s.buf[:4*len(dst)]
	if _, err := s.f.ReadAt(b, int64(first)*int64(s.size)*4); err != nil {
		return fmt.Errorf("reading spilled examples: %w", err)
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return nil
}

// close closes and deletes the file; closing twice does nothing.
func (s *spillFile) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	os.Remove(s.f.Name())
	s.f = nil
	return err
}
