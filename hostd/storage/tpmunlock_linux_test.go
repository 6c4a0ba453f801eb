package storage

import (
	"context"
	"regexp"
	"testing"
)

// TestRecoveryKey: 8 groups of 6 digits, different each time; typed with
// spaces, without separators or as shown it is the same key; anything else
// (a passphrase) is left as typed.
func TestRecoveryKey(t *testing.T) {
	a, err := newRecoveryKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newRecoveryKey()
	if !regexp.MustCompile(`^([0-9]{6}-){7}[0-9]{6}$`).MatchString(a) || a == b {
		t.Fatalf("recovery keys %q, %q", a, b)
	}
	for _, typed := range []string{a, " " + regexp.MustCompile(`-`).ReplaceAllString(a, " ") + " ", regexp.MustCompile(`-`).ReplaceAllString(a, "")} {
		if got := normalRecoveryKey(typed); got != a {
			t.Errorf("typed %q: %q, want %q", typed, got, a)
		}
	}
	for _, pass := range []string{"correct horse battery", "12345", a + "1", "abcdef-" + a[7:]} {
		if got := normalRecoveryKey(pass); got != pass {
			t.Errorf("passphrase %q came back as %q", pass, got)
		}
	}
}

// TestShowRecoveryKey: the key is in the prompt; a wrong last group is
// said and asked again; the right one goes on.
func TestShowRecoveryKey(t *testing.T) {
	key := "111111-222222-333333-444444-555555-666666-777777-888888"
	var prompts []string
	answers := []string{"888887", " 888888 "}
	ask := func(ctx context.Context, prompt string) (string, error) {
		prompts = append(prompts, prompt)
		a := answers[0]
		answers = answers[1:]
		return a, nil
	}
	if err := showRecoveryKey(context.Background(), ask, key); err != nil {
		t.Fatal(err)
	}
	if len(prompts) != 2 || !regexp.MustCompile(regexp.QuoteMeta(key)).MatchString(prompts[0]) ||
		!regexp.MustCompile(`not the last group`).MatchString(prompts[1]) {
		t.Errorf("prompts %q", prompts)
	}
}
