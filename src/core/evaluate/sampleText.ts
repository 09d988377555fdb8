/**
 * Texts bundled for `eval` when the user gives none (the metrics need a text the model did not
 * write). Which one a model gets: a character vocabulary -> the Shakespeare excerpt (PicoGPT's
 * corpus alphabet), anything else -> the short story (TinyStories' register, for stories260K).
 */

/**
 * From the Tiny Shakespeare corpus (public domain; The Taming of the Shrew, Act III), taken from the
 * last 10% of the text, which PicoGPT held out for validation.
 */
export const SAMPLE_SHAKESPEARE = "BIANCA:\nWhy, I am past my gamut long ago.\n\nHORTENSIO:\nYet read the gamut of Hortensio.\n\nBIANCA:\n\nServant:\nMistress, your father prays you leave your books\nAnd help to dress your sister's chamber up:\nYou know to-morrow is the wedding-day.\n\nBIANCA:\nFarewell, sweet masters both; I must be gone.\n\nLUCENTIO:\nFaith, mistress, then I have no cause to stay.\n\nHORTENSIO:\nBut I have cause to pry into this pedant:\nMethinks he looks as though he were in love:\nYet if thy thoughts, Bianca, be so humble\nTo cast thy wandering eyes on every stale,\nSeize thee that list: if once I find thee ranging,\nHortensio will be quit with thee by changing.\n\nBAPTISTA:\n\nKATHARINA:\nNo shame but mine: I must, forsooth, be forced\nTo give my hand opposed against my heart\nUnto a mad-brain rudesby full of spleen;\nWho woo'd in haste and means to wed at leisure.\nI told you, I, he was a frantic fool,\nHiding his bitter jests in blunt behavior:\nAnd, to be noted for a merry man,\nHe'll woo a thousand, 'point the day of marriage,\nMake feasts, invite friends, and proclaim the banns;\nYet never means to wed where he hath woo'd.\nNow must the world point at poor Katharina,\nAnd say, 'Lo, there is mad Petruchio's wife,\nIf it would please him come and marry her!'\n\nTRANIO:\nPatience, good Katharina, and Baptista too.\nUpon my life, Petruchio means but well,\nWhatever fortune stays him from his word:\nThough he be blunt, I know him passing wise;\nThough he be merry, yet withal he's honest.\n\nKATHARINA:\nWould Katharina had never seen him though!\n\nBAPTISTA:\nGo, girl; I cannot blame thee now to weep;\nFor such an injury would vex a very saint,\nMuch more a shrew of thy impatient humour.\n\nBIONDELLO:\nMaster, master! news, old news, and such news as\nyou never heard of!\n\nBAPTISTA:\nIs it new and old too? how may that be?\n\nBIONDELLO:\n";

/** A short children's story written for this project in the simple register of TinyStories. */
export const SAMPLE_STORY = "Once upon a time, there was a little boy named Tim. Tim had a red kite. He liked to fly it in the park with his dad.\nOne day, the wind was very strong. Tim held the string tight, but the kite went up into a big tree. Tim was sad. \"My kite is stuck!\" he said.\nHis dad looked at the tree. \"Let's ask for help,\" he said. They saw a girl named Sue. Sue was good at climbing. She went up the tree and got the kite.\nTim smiled and said, \"Thank you, Sue!\" Sue smiled too. \"Can I fly it with you?\" she asked. Tim said yes. They ran and ran, and the kite flew high in the sky.\nWhen the sun went down, Tim and Sue sat on the grass. They were tired but happy. Tim's dad gave them some cookies. They ate the cookies and watched the birds.\nFrom that day on, Tim and Sue were best friends. They flew the kite every day, and they always shared.\n";

/** The bundled text suited to a tokenizer kind (see above). */
export function sampleTextFor(kind: 'char' | 'sentencepiece' | 'bpe'): { name: string; text: string } {
  return kind === 'char' ? { name: 'bundled Shakespeare excerpt', text: SAMPLE_SHAKESPEARE } : { name: 'bundled story', text: SAMPLE_STORY };
}
