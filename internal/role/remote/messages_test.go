package remote

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/remote/wire"
)

// fill sets every field reachable from v to a non-zero value (slices and
// maps get two elements), so that a field the encoding dropped would show.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n % 100))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) / 7)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), n)
		}
	}
}

// TestMessages_RoundTrip fills every field of every message and checks
// that it comes back: a field added to a role message travels, or this
// test (and the schema) fails.
func TestMessages_RoundTrip(t *testing.T) {
	for _, m := range wireTypes {
		typ := reflect.TypeOf(m)
		t.Run(typ.String(), func(t *testing.T) {
			in := reflect.New(typ)
			n := 0
			fill(in.Elem(), &n)
			b, err := wire.Marshal(in.Interface())
			if err != nil {
				t.Fatal(err)
			}
			out := reflect.New(typ)
			if err := wire.Unmarshal(b, out.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in.Interface(), out.Interface()) {
				t.Fatalf("round trip differs:\n in %+v\nout %+v", in.Elem(), out.Elem())
			}
		})
	}
	if s, err := schema(); err != nil || s == "" {
		t.Fatalf("schema %q: %v", s, err)
	}
}

// TestRoutes_CoverMethods checks that a server hosting every role routes
// exactly the methods the protocol lists, and that each client method
// finds its route.
func TestRoutes_CoverMethods(t *testing.T) {
	s := &Server{cfg: ServerConfig{}}
	h := Hosted{Actor: &countingActor{}, Critic: criticStub{}, Reference: &countingActor{}, Reward: newBlockingReward(), Rollout: rolloutStub{}}
	routes := s.buildRoutes(h)
	var want []string
	want = append(want, method{"", methodHello}.path())
	for r, ms := range methods {
		for _, m := range ms {
			want = append(want, method{r, m}.path())
		}
	}
	var got []string
	for p := range routes {
		got = append(got, p)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("routes\n%v\nmethods\n%v", got, want)
	}
}

type criticStub struct{ role.Critic }

type rolloutStub struct{ role.Rollout }
