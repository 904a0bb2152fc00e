package gemm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func threadTimes() string {
	var out []string
	ds, _ := filepath.Glob("/proc/self/task/*/stat")
	for _, d := range ds {
		b, _ := os.ReadFile(d)
		f := strings.Fields(string(b))
		out = append(out, f[1]+":"+f[13]+"/"+f[14])
	}
	return strings.Join(out, " ")
}

func TestThreads(t *testing.T) {
	fmt.Println("before", threadTimes())
	Available()
	time.Sleep(time.Second)
	fmt.Println("after load", threadTimes())
	k, _ := Get("blas")
	a := make([]float32, 512*512)
	c := make([]float32, 512*512)
	k.Sgemm(false, false, 512, 512, 512, 1, a, 512, a, 512, 0, c, 512)
	fmt.Println("after call", threadTimes())
	time.Sleep(time.Second)
	fmt.Println("1s later", threadTimes())
}
