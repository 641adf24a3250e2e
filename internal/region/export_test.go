package region

// ByteMap lists the control block's documented fields and their offsets
// in the code, for the test that compares them with docs/ARCHITECTURE.md.
var ByteMap = []struct {
	Offset, Size int
	Field        string // a word the documented row's text starts with
}{
	{offMagic, 8, "magic"},
	{offFormat, 4, "control block format version"},
	{offLayout, 4, "layout"},
	{offSize, 8, "data object size"},
	{offNonce, 8, "nonce"},
	{offBootID, bootIDLen, "boot id"},
	{offNumSlots, 4, "number of owner slots"},
	{offSeq, 8, "seq"},
	{offLock, 8, "lock word"},
	{offLease, 8, "lease word"},
	{offLabel, labelLen, "lock owner label"},
	{offUndoState, 4, "undo state"},
	{offUndoOff, 8, "undo offset"},
	{offUndoLen, 8, "undo length"},
	{offFlagBy, 8, "flag holder"},
	{offUndoCap, 8, "undo capacity"},
	{offWatch, 4, "watch word"},
	{offWaiters, 4, "number of processes sleeping"},
	{offRetired, 4, "retired"},
	{offFence, 8, "fence"},
	{offSlots, numSlots * slotSize, "owner slots"},
	{ctlHeaderSize, -1, "undo area"},
}

// Magic and Format are format 2's magic and number.
const (
	Magic      = ctlMagic
	FormatNum  = ctlFormat
	NumSlots   = numSlots
	SlotSize   = slotSize
	HeaderSize = ctlHeaderSize
)
