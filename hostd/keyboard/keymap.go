package keyboard

// Mods are the modifiers in effect for a key press.
type Mods struct {
	Shift, Ctrl, Alt, CapsLock bool
}

// ModsOf reads the modifiers from what is held down.
func ModsOf(held func(code uint16) bool, capsLock bool) Mods {
	return Mods{
		Shift:    held(KeyLeftShift) || held(KeyRightShift),
		Ctrl:     held(KeyLeftCtrl) || held(KeyRightCtrl),
		Alt:      held(KeyLeftAlt) || held(KeyRightAlt),
		CapsLock: capsLock,
	}
}

// usKeys are the printing keys of a US keyboard: plain and shifted.
var usKeys = map[uint16][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'}, 7: {'6', '^'}, 8: {'7', '&'},
	9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'}, 12: {'-', '_'}, 13: {'=', '+'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'}, 21: {'y', 'Y'}, 22: {'u', 'U'},
	23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'}, 26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'}, 35: {'h', 'H'}, 36: {'j', 'J'},
	37: {'k', 'K'}, 38: {'l', 'L'}, 39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
	44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'}, 49: {'n', 'N'}, 50: {'m', 'M'},
	51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'}, 57: {' ', ' '},
	// The keypad, as with Num Lock on.
	55: {'*', '*'}, 71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'}, 75: {'4', '4'}, 76: {'5', '5'},
	77: {'6', '6'}, 78: {'+', '+'}, 79: {'1', '1'}, 80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'},
	98: {'/', '/'},
}

// The Linux console's sequences for the keys that send more than a
// character.
var consoleKeys = map[uint16]string{
	KeyEsc: "\x1b", KeyBackspace: "\x7f", KeyTab: "\t", KeyEnter: "\r", KeyKPEnter: "\r",
	103: "\x1b[A", 108: "\x1b[B", 106: "\x1b[C", 105: "\x1b[D", // arrows
	102: "\x1b[1~", 107: "\x1b[4~", 110: "\x1b[2~", 111: "\x1b[3~", 104: "\x1b[5~", 109: "\x1b[6~", // home, end, insert, delete, page up and down
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' }

// Translate is what the host's console reads for a press of key code
// with mods, as the Linux console's default (US) keymap has it: nil for
// a key that types nothing (modifiers, function keys). Ctrl makes the
// control character (Ctrl+C is 0x03); Alt puts ESC before it, as the
// console's meta key does.
func Translate(code uint16, m Mods) []byte {
	var out []byte
	if s, ok := consoleKeys[code]; ok {
		out = []byte(s)
	} else if pair, ok := usKeys[code]; ok {
		c := pair[0]
		shift := m.Shift
		if m.CapsLock && isLetter(c) {
			shift = !shift
		}
		if shift {
			c = pair[1]
		}
		if m.Ctrl {
			switch {
			case isLetter(pair[0]):
				c = pair[0] - 'a' + 1
			case c == ' ' || c == '@' || c == '2':
				c = 0
			case c >= '[' && c <= '_': // [ \ ] ^ _
				c -= 0x40
			case c == '{' || c == '|' || c == '}':
				c -= 0x60
			}
		}
		out = []byte{c}
	} else {
		return nil
	}
	if m.Alt {
		out = append([]byte{0x1b}, out...)
	}
	return out
}
