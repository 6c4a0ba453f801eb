// Package tpmseal seals a secret to a TPM 2.0 and its platform state: the
// TPM gives the secret back only while the chosen PCRs (PCR 7: the
// firmware's Secure Boot state and keys) hold the values they held when it
// was sealed, and only on this TPM. hostd seals the data partition's key
// with it, so the laptop unlocks its own disk and nothing else does: the
// disk in another machine, or this machine with Secure Boot turned off or
// other keys enrolled, needs the recovery key.
package tpmseal

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Sealed is a secret sealed to one TPM: the TPM's own encrypted blob of
// it (useless elsewhere) and the PCRs it is bound to.
type Sealed struct {
	Public  []byte `json:"public"`
	Private []byte `json:"private"`
	// PCRs are the SHA-256 bank's PCRs the policy covers.
	PCRs []uint `json:"pcrs"`
}

// ErrPolicy means the TPM refused to unseal: the PCRs no longer hold the
// values the secret was sealed to (Secure Boot turned off, other keys
// enrolled, other firmware), or this is another TPM.
var ErrPolicy = errors.New("the TPM refused to unseal: the firmware's Secure Boot state or keys changed since the key was sealed, or this is another machine")

// srk makes the storage root key under the owner hierarchy from the TCG's
// ECC P-256 template: the same key every time on one TPM, so nothing is
// stored in the TPM. A TPM whose owner hierarchy has a password refuses.
func srk(t transport.TPM) (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("create the storage root key (a TPM whose owner has a password refuses; clearing the TPM in the firmware settings removes it): %w", err)
	}
	return rsp, nil
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}

func selection(pcrs []uint) tpm2.TPMLPCRSelection {
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcrs...)}}}
}

// Seal seals secret (at most 128 bytes) to the TPM and the current values
// of pcrs in its SHA-256 bank.
func Seal(t transport.TPM, secret []byte, pcrs []uint) (*Sealed, error) {
	if len(secret) == 0 || len(secret) > 128 {
		return nil, fmt.Errorf("seal: a secret of %d bytes (1 to 128)", len(secret))
	}
	if len(pcrs) == 0 {
		return nil, errors.New("seal: no PCRs to bind to")
	}
	root, err := srk(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, root.ObjectHandle)
	// The policy: these PCRs as they are now (a trial session computes
	// its digest; an empty PCR digest means the current values).
	sess, closeSess, err := tpm2.PolicySession(t, tpm2.TPMAlgSHA256, 16, tpm2.Trial())
	if err != nil {
		return nil, fmt.Errorf("seal: start a trial policy session: %w", err)
	}
	defer closeSess()
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: selection(pcrs)}).Execute(t); err != nil {
		return nil, fmt.Errorf("seal: bind to PCRs %v: %w", pcrs, err)
	}
	digest, err := tpm2.PolicyGetDigest{PolicySession: sess.Handle()}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("seal: read the policy digest: %w", err)
	}
	rootPub, err := root.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("seal: the storage root key: %w", err)
	}
	rsp, err := tpm2.Create{
		// The secret crosses the bus to the TPM encrypted: a session
		// salted to the storage root key, its parameters under AES.
		ParentHandle: tpm2.AuthHandle{Handle: root.ObjectHandle, Name: root.Name,
			Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(nil), tpm2.Salted(root.ObjectHandle, *rootPub), tpm2.AESEncryption(128, tpm2.EncryptIn))},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type:    tpm2.TPMAlgKeyedHash,
			NameAlg: tpm2.TPMAlgSHA256,
			// Never leaves this TPM; no password, only the policy; no
			// dictionary-attack lockout (the policy is not guessable).
			ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, NoDA: true},
			AuthPolicy:       tpm2.TPM2BDigest{Buffer: digest.PolicyDigest.Buffer},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
				&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
		}),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("seal: create the sealed object: %w", err)
	}
	return &Sealed{Public: tpm2.Marshal(rsp.OutPublic), Private: tpm2.Marshal(rsp.OutPrivate), PCRs: append([]uint(nil), pcrs...)}, nil
}

// Unseal gives back the secret s holds when the PCRs it is bound to hold
// the values they held at Seal, on the same TPM; otherwise an error
// wrapping ErrPolicy.
func Unseal(t transport.TPM, s *Sealed) ([]byte, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](s.Public)
	if err != nil {
		return nil, fmt.Errorf("unseal: the sealed object's public part: %w", err)
	}
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](s.Private)
	if err != nil {
		return nil, fmt.Errorf("unseal: the sealed object's private part: %w", err)
	}
	root, err := srk(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, root.ObjectHandle)
	obj, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: root.ObjectHandle, Name: root.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    *priv,
		InPublic:     *pub,
	}.Execute(t)
	if err != nil {
		// Another TPM's blob does not load: its parent key differs.
		return nil, fmt.Errorf("unseal: load the sealed object: %w (%w)", err, ErrPolicy)
	}
	defer flush(t, obj.ObjectHandle)
	rootPub, err := root.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("unseal: the storage root key: %w", err)
	}
	// The key comes back over the bus encrypted (a session salted to the
	// storage root key, the response under AES): a probe on the TPM's
	// bus reads nothing of it.
	sess, closeSess, err := tpm2.PolicySession(t, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(root.ObjectHandle, *rootPub), tpm2.AESEncryption(128, tpm2.EncryptOut))
	if err != nil {
		return nil, fmt.Errorf("unseal: start a policy session: %w", err)
	}
	defer closeSess()
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: selection(s.PCRs)}).Execute(t); err != nil {
		return nil, fmt.Errorf("unseal: PCRs %v: %w", s.PCRs, err)
	}
	out, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: obj.ObjectHandle, Name: obj.Name, Auth: sess}}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCPolicyFail) || errors.Is(err, tpm2.TPMRCPCRChanged) {
			return nil, fmt.Errorf("unseal: %w (%w)", err, ErrPolicy)
		}
		return nil, fmt.Errorf("unseal: %w", err)
	}
	return out.OutData.Buffer, nil
}
