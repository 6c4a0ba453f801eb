package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// scripted is an Asker that answers from a script and records prompts.
type scripted struct {
	answers []string
	prompts []string
}

func (s *scripted) ask(_ context.Context, prompt string) (string, error) {
	s.prompts = append(s.prompts, prompt)
	if len(s.answers) == 0 {
		return "", errors.New("no more answers")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

// TestNewPassphrase: a passphrase too short or not typed the same twice
// is asked for again, saying why; nothing else ends it but a good one.
func TestNewPassphrase(t *testing.T) {
	s := &scripted{answers: []string{"short", "long enough", "long enuf", "long enough", "long enough"}}
	got, err := newPassphrase(context.Background(), s.ask)
	if err != nil || got != "long enough" {
		t.Fatalf("newPassphrase = %q, %v", got, err)
	}
	want := []string{"choose its passphrase", "at least 8 characters", "the same passphrase again", "the two differed", "the same passphrase again"}
	if len(s.prompts) != len(want) {
		t.Fatalf("prompts %q", s.prompts)
	}
	for i, w := range want {
		if !strings.Contains(s.prompts[i], w) {
			t.Errorf("prompt %d = %q, want %q in it", i, s.prompts[i], w)
		}
	}
	if _, err := newPassphrase(context.Background(), (&scripted{}).ask); err == nil {
		t.Error("no console: no error")
	}
}
